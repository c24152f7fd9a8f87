import { createIncidents, createLogger, openIncidents, parseConfig } from '@admin-jobs/sdk/platform'
import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'

const t0 = new Date('2026-03-01T12:00:00Z')
const at = (minutes: number) => new Date(t0.getTime() + minutes * 60_000)
const quiet = createLogger({ scope: 'test', write: () => {} })

let db: TestDatabase

beforeAll(async () => {
  db = await createTestDatabase('incidents')
})

const config = () =>
  parseConfig({
    DATABASE_URL: db.url,
    SMTP_URL: 'smtp://127.0.0.1:2525',
    ALERT_EMAIL_TO: 'ops@example.com',
    SLACK_WEBHOOK_URL: 'http://127.0.0.1:9/hook',
    ADMIN_JOBS_ENVIRONMENT: 'staging',
  })
const incidents = (dryRun = false) =>
  createIncidents({ sql: db.sql, config: config(), log: quiet, job: 'test/monitor', dryRun })

async function messagesFor(key: string) {
  return db.sql`
    select m.kind, m.subject, m.text, array_remove(array_agg(d.channel order by d.channel), null) as channels
    from jobs.messages m left join jobs.deliveries d on d.message_id = m.id
    where m.incident_key = ${key} group by m.id order by m.id`
}

describe('the incident model', () => {
  it('queues exactly one alert when ten runs observe the same failure at once', async () => {
    const key = `burst-${Math.random()}`
    const decisions = await Promise.all(
      Array.from({ length: 10 }, () =>
        incidents().observe({ key, ok: false, error: 'down', title: 'X is down', at: at(0) }),
      ),
    )
    expect(decisions.map((d) => d.action).sort()).toEqual(['alert', ...Array(8).fill('none'), 'pending'].sort())
    const messages = await messagesFor(key)
    expect(messages.map((m) => m.kind)).toEqual(['alert'])
    expect(messages[0]!.channels).toEqual(['email', 'slack'])
    const [row] = await db.sql`select status, failures, occurrences from jobs.incidents where key = ${key}`
    expect(row).toMatchObject({ status: 'open', failures: 10, occurrences: 10 })
  })

  it('keeps the streak across runs, reminds hourly and words the recovery with the outage length', async () => {
    const key = `streak-${Math.random()}`
    const observe = (minutes: number, ok: boolean) =>
      incidents().observe({ key, ok, error: 'down', title: 'X is down', at: at(minutes) })
    const actions = []
    for (const [m, ok] of [
      [0, false],
      [5, false],
      [30, false],
      [65, false],
      [95, true],
      [100, true],
    ] as const)
      actions.push((await observe(m, ok)).action)
    expect(actions).toEqual(['pending', 'alert', 'none', 'reminder', 'recovery', 'none'])
    const messages = await messagesFor(key)
    expect(messages.map((m) => [m.kind, m.subject])).toEqual([
      ['alert', '[critical] X is down'],
      ['reminder', '[critical] Still failing: X is down'],
      ['recovery', '[resolved] Resolved: X is down'],
    ])
    expect(messages[2]!.text).toContain('Back to normal after 1h 35m.')
    expect(messages[0]!.text).toMatch(/when: 1 Mar 2026, 12:05 UTC\nwhere: staging\njob: test\/monitor/)
    const [row] = await db.sql`select status, resolved_at from jobs.incidents where key = ${key}`
    expect(row!.status).toBe('resolved')
    expect(row!.resolved_at).toEqual(at(95))
  })

  it('writes nothing for a healthy key and nothing at all in a dry run', async () => {
    await incidents().observe({ key: 'healthy', ok: true, title: 'X' })
    const dry = await incidents(true).observe({ key: 'dry', ok: false, title: 'X', failuresToAlert: 1 })
    expect(dry.action).toBe('alert')
    expect(await db.sql`select 1 from jobs.incidents where key in ('healthy', 'dry')`).toHaveLength(0)
    expect(await messagesFor('dry')).toHaveLength(0)
  })

  it('alerts once per dedupe key until resolved, and a recovery only for what was alerted', async () => {
    const key = `alert-${Math.random()}`
    const a = incidents()
    expect((await a.alert({ severity: 'warning', title: 'W', text: 'first', dedupeKey: key })).kind).toBe('alert')
    expect((await a.alert({ severity: 'warning', title: 'W', text: 'again', dedupeKey: key })).kind).toBe('suppressed')
    expect((await a.resolve(key)).kind).toBe('recovery')
    expect((await a.resolve(key)).kind).toBe('suppressed')
    expect((await a.resolve('never-opened')).kind).toBe('suppressed')
    expect((await messagesFor(key)).map((m) => m.kind)).toEqual(['alert', 'recovery'])
  })

  it('ends a burst that went quiet without a notice, so the next burst alerts again', async () => {
    const key = `quiet-${Math.random()}`
    const burst = (minutes: number) =>
      incidents().alert({
        severity: 'critical',
        title: 'Brute force',
        text: 'many',
        dedupeKey: key,
        quietAfter: '15m',
        at: at(minutes),
      })
    expect((await burst(0)).kind).toBe('alert')
    expect((await burst(10)).kind).toBe('suppressed')
    expect((await burst(20)).kind).toBe('suppressed')
    expect((await burst(60)).kind).toBe('alert')
    expect((await messagesFor(key)).map((m) => m.kind)).toEqual(['alert', 'alert'])
    // Quiet bursts end by themselves: open while the burst may go on, not once its quiet period has passed.
    const open = async (minutes: number) => (await openIncidents(db.sql, at(minutes))).some((i) => i.key === key)
    expect(await open(70)).toBe(true)
    expect(await open(76)).toBe(false)
  })

  it('counts the quiet up to where a burst began, so a burst seen whole later still continues its incident', async () => {
    const key = `span-${Math.random()}`
    const burst = (from: number, to: number) =>
      incidents().alert({
        severity: 'critical',
        title: 'Brute force',
        text: 'many',
        dedupeKey: key,
        quietAfter: '15m',
        since: at(from),
        at: at(to),
      })
    expect((await burst(0, 14)).kind).toBe('alert')
    // Seen again 26 minutes after its last failure, but it never stopped: it began before that failure.
    expect((await burst(5, 40)).kind).toBe('suppressed')
    expect((await burst(70, 80)).kind).toBe('alert')
    expect((await messagesFor(key)).map((m) => m.kind)).toEqual(['alert', 'alert'])
    const [row] = await db.sql`select last_failure_at from jobs.incidents where key = ${key}`
    expect(row!.last_failure_at).toEqual(at(80))
  })

  it('records an info alert once, for reports only: no channel', async () => {
    const key = `info-${Math.random()}`
    const a = incidents()
    expect((await a.alert({ severity: 'info', title: 'New admin IP', text: 'x', dedupeKey: key })).kind).toBe('alert')
    expect((await a.alert({ severity: 'info', title: 'New admin IP', text: 'x', dedupeKey: key })).kind).toBe(
      'suppressed',
    )
    const messages = await messagesFor(key)
    expect(messages).toHaveLength(1)
    expect(messages[0]!.channels).toEqual([])
  })

  it('forgets the incidents of targets no longer watched, silently', async () => {
    const a = incidents()
    for (const target of ['a', 'b', 'c']) await a.observe({ key: `h:${target}`, ok: false, title: target })
    expect(await a.retire('h:', ['b'])).toBe(2)
    const left = await db.sql`select key from jobs.incidents where key like 'h:%'`
    expect(left.map((r) => r.key)).toEqual(['h:b'])
  })

  it('lists the open incidents under a prefix, and only those', async () => {
    const a = incidents()
    await a.alert({ severity: 'warning', title: 'seats 1', text: 'over', dedupeKey: 'seats:1' })
    await a.alert({ severity: 'warning', title: 'seats 2', text: 'over', dedupeKey: 'seats:2' })
    await a.alert({ severity: 'warning', title: 'other', text: 'over', dedupeKey: 'other:seats:3' })
    await a.resolve('seats:2')
    expect((await a.open('seats:')).map((i) => i.key)).toEqual(['seats:1'])
    expect((await a.open('')).map((i) => i.key)).toEqual(expect.arrayContaining(['seats:1', 'other:seats:3']))
  })

  it('masks secrets an alert quotes before it is queued', async () => {
    const secretConfig = parseConfig({
      DATABASE_URL: db.url,
      SLACK_WEBHOOK_URL: 'http://127.0.0.1:9/hooks/T000/very-secret-token',
    })
    const a = createIncidents({ sql: db.sql, config: secretConfig, log: quiet })
    await a.alert({
      severity: 'critical',
      title: 'boom',
      text: 'posting to http://127.0.0.1:9/hooks/T000/very-secret-token failed',
    })
    const [m] = await db.sql`select text, slack from jobs.messages where subject = '[critical] boom'`
    expect(m!.text).not.toContain('very-secret-token')
    expect(JSON.stringify(m!.slack)).not.toContain('very-secret-token')
  })
})
