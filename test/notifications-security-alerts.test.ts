import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runJobScript } from './support/run.ts'
import { type HttpCapture, type SmtpCapture, startHttp, startSmtp } from './support/servers.ts'

const script = 'scripts/notifications/security-alerts.ts'
const job = 'notifications/security-alerts'
const t0 = Date.parse('2026-11-28T12:00:00Z')
const min = 60_000
const at = (offsetMin: number) => new Date(t0 + offsetMin * min)

let db: TestDatabase
let smtp: SmtpCapture
let http: HttpCapture

beforeAll(async () => {
  ;[db, smtp, http] = await Promise.all([createTestDatabase('security'), startSmtp(), startHttp()])
})
afterAll(async () => {
  await Promise.all([smtp?.close(), http?.close()])
})
beforeEach(async () => {
  await db.sql`truncate audit_logs, users, jobs.job_state, jobs.incidents, jobs.messages restart identity cascade`
  smtp.messages.length = 0
  http.requests.length = 0
  await db.sql`
    insert into users (id, email, role) values
      (1, 'alice@example.com', 'owner'), (2, 'bob@example.com', 'admin'), (3, 'carol@example.com', 'user'),
      (4, 'dave@example.com', 'user')`
})

interface Event {
  at: Date
  action: string
  actor?: number
  target?: string
  targetType?: string
  ip?: string
  metadata?: Record<string, unknown>
}

async function insert(events: Event[], sql = db.sql) {
  for (const e of events)
    await sql`
      insert into audit_logs (occurred_at, actor_id, action, target_type, target_id, ip, metadata)
      values (${e.at}, ${e.actor ?? null}, ${e.action}, ${e.targetType ?? (e.target ? 'user' : null)},
              ${e.target ?? null}, ${e.ip ?? null}, ${sql.json((e.metadata ?? {}) as never)})`
}

const failures = (n: number, f: (i: number) => Partial<Event>, startMin = -14): Event[] =>
  Array.from({ length: n }, (_, i) => ({ at: at(startMin + i), action: 'auth.login_failed', ...f(i) }))

function run(nowMin = 0, extra: Record<string, string> = {}, args: string[] = []) {
  return runJobScript(script, {
    args,
    env: {
      DATABASE_URL: db.url,
      ADMIN_JOBS_NOW: at(nowMin).toISOString(),
      SLACK_WEBHOOK_URL: `${http.url}/hook`,
      SMTP_URL: smtp.url,
      ALERT_EMAIL_FROM: 'jobs@example.com',
      ALERT_EMAIL_TO: 'security@example.com',
      ...extra,
    },
  })
}

const slackTitles = () => http.requests.map((r) => r.json().text as string).sort()
const watermark = async () =>
  (await db.sql`select value from jobs.job_state where job = ${job} and key = 'watermark'`)[0]?.value

describe('notifications/security-alerts', () => {
  it('fires every rule at its threshold and not one below, critical to Slack and email, info only recorded', async () => {
    await insert([
      ...failures(10, (i) => ({ ip: '203.0.113.10', metadata: { email: `victim${i}@example.com` } })),
      ...failures(9, (i) => ({ ip: '203.0.113.9', metadata: { email: `other${i}@example.com` } })),
      ...failures(5, (i) => ({ ip: `198.51.100.${i + 1}`, metadata: { email: 'Target@Example.com' } })),
      ...failures(4, (i) => ({ ip: `198.51.100.${i + 50}`, metadata: { email: 'almost@example.com' } })),
      {
        at: at(-30),
        action: 'user.role_changed',
        actor: 1,
        target: '3',
        ip: '10.0.0.1',
        metadata: { from: 'user', to: 'admin' },
      },
      {
        at: at(-29),
        action: 'user.role_changed',
        actor: 1,
        target: '4',
        ip: '10.0.0.1',
        metadata: { from: 'admin', to: 'user' },
      },
      { at: at(-28), action: 'auth.mfa_disabled', actor: 2, target: '2', ip: '10.0.0.2' },
      { at: at(-27), action: 'auth.mfa_disabled', actor: 4, target: '4', ip: '10.0.0.4' },
      { at: at(-26), action: 'data.export', actor: 4, target: 'users', ip: '10.0.0.4', metadata: { rows: 10_000 } },
      { at: at(-25), action: 'data.export', actor: 4, target: 'users', ip: '10.0.0.4', metadata: { rows: 9_999 } },
      {
        at: at(-24),
        action: 'api_key.created',
        actor: 1,
        target: '77',
        targetType: 'credential',
        ip: '10.0.0.1',
        metadata: { name: 'deploy' },
      },
      { at: at(-23), action: 'api_key.created', actor: 3, target: '78', targetType: 'credential', ip: '10.0.0.3' },
      // Bob logged in from 10.0.0.2 twenty days ago: known. 10.9.9.9 is new for him.
      { at: at(-20 * 24 * 60), action: 'auth.login', actor: 2, ip: '10.0.0.2' },
      { at: at(-22), action: 'auth.login', actor: 2, ip: '10.0.0.2' },
      { at: at(-21), action: 'auth.login', actor: 2, ip: '10.9.9.9' },
      { at: at(-20), action: 'auth.login', actor: 3, ip: '10.9.9.8' },
      // Older than the first run's 24-hour look-back: history, not news.
      { at: at(-25 * 60), action: 'user.role_changed', actor: 1, target: '4', metadata: { from: 'user', to: 'owner' } },
    ])
    const result = await run()
    expect(result.code, result.output).toBe(0)
    expect(slackTitles()).toEqual(
      [
        ':rotating_light: Account targeted: 5 failed logins for target@example.com',
        ':rotating_light: Brute force: 10 failed logins from 203.0.113.10',
        ':rotating_light: MFA disabled on admin bob@example.com',
        ':rotating_light: Mass export: dave@example.com exported 10,000 rows',
        ':rotating_light: New IP for admin bob@example.com: 10.9.9.9',
        ':rotating_light: Privilege escalation: carol@example.com made admin',
      ].sort(),
    )
    const mails = await smtp.waitFor(6)
    expect(mails).toHaveLength(6)
    const brute = mails.find((m) => m.subject?.includes('Brute force'))!
    expect(brute.subject).toBe('[critical] Brute force: 10 failed logins from 203.0.113.10')
    expect(brute.text).toContain('203.0.113.10')
    expect(brute.text).toContain('2026-11-28T11:46:00Z – 2026-11-28T11:55:00Z')
    expect(brute.text).toContain('victim0@example.com')
    const escalation = mails.find((m) => m.subject?.includes('Privilege escalation'))!
    expect(escalation.text).toContain(
      'alice@example.com changed the role of carol@example.com from user to admin from 10.0.0.1',
    )

    // Info is recorded for the daily report: a message with no delivery on any channel.
    const info = await db.sql`
      select m.kind, m.title, count(d.channel)::int as deliveries
      from jobs.messages m left join jobs.deliveries d on d.message_id = m.id
      where m.severity = 'info' group by m.id`
    expect(info).toEqual([{ kind: 'alert', title: 'API key created by owner alice@example.com', deliveries: 0 }])
    expect(result.stdout).toMatch(/security rules evaluated .*alerted=6 recordedInfo=1/)
    const [stored] = await db.sql`select max(id)::text as max from audit_logs`
    expect((await watermark()).lastId).toBe(stored!.max)
  })

  it('alerts once per incident across re-runs, concurrent runs and a continuing burst', async () => {
    await insert(failures(10, () => ({ ip: '203.0.113.7', metadata: { email: 'x@example.com' } }), -30))
    // x@example.com crosses its own threshold too; fine, both are one incident each.
    expect((await run(-15)).code).toBe(0)
    expect(http.requests).toHaveLength(2)

    // Five more attempts five minutes later: the same burst, no new alert.
    await insert(failures(5, () => ({ ip: '203.0.113.7', metadata: { email: 'x@example.com' } }), -16))
    const [a, b] = await Promise.all([run(-5), run(-5)])
    expect(a.code, a.output).toBe(0)
    expect(b.code, b.output).toBe(0)
    expect((await run(0)).code).toBe(0)
    expect(http.requests).toHaveLength(2)
    const [incident] = await db.sql`
      select status, occurrences, last_failure_at from jobs.incidents where key = 'security:brute-force-ip:203.0.113.7'`
    expect(incident).toMatchObject({ status: 'open', occurrences: 2, last_failure_at: at(-12) })

    // A new burst an hour later is a new incident of the same rule and subject: it alerts again.
    await insert(failures(10, () => ({ ip: '203.0.113.7', metadata: { email: 'y@example.com' } }), 60))
    expect((await run(75)).code).toBe(0)
    expect(http.requests).toHaveLength(4)
    const keys = await db.sql`select incident_key from jobs.messages where kind = 'alert' order by id`
    expect(keys.map((k) => k.incident_key)).toEqual([
      'security:brute-force-ip:203.0.113.7',
      'security:account-targeted:x@example.com',
      'security:brute-force-ip:203.0.113.7',
      'security:account-targeted:y@example.com',
    ])
  })

  it('keeps one incident for a burst that goes on across runs further apart than its window', async () => {
    // One failed login a minute for an hour, each for a different account (so only the per-IP rule fires).
    const attempt = (i: number) => ({ ip: '203.0.113.99', metadata: { email: `u${i}@example.com` } })
    await insert(failures(20, attempt, -60))
    expect((await run(-40)).code).toBe(0)
    // The next run comes 40 minutes later (a late schedule): the burst's end moved 40 minutes, but it never paused.
    await insert(failures(40, (i) => attempt(i + 20), -40))
    const later = await run(0)
    expect(later.code, later.output).toBe(0)
    expect(later.stdout).toMatch(/security rules evaluated .*alerted=0 recordedInfo=0 continued=1/)
    expect(slackTitles()).toEqual([':rotating_light: Brute force: 20 failed logins from 203.0.113.99'])
  })

  it('catches a row committed late with an older occurred_at and an id below the watermark', async () => {
    expect((await run(-20)).code).toBe(0) // first run: empty table, watermark at 0
    const held = await db.sql.reserve()
    try {
      await held`begin`
      // Takes the next id now, commits only after the job has read past it.
      await insert(
        failures(1, () => ({ ip: '192.0.2.66', metadata: { email: 'late@example.com' } }), -14),
        held,
      )
      await insert(failures(9, (i) => ({ ip: '192.0.2.66', metadata: { email: `l${i}@example.com` } }), -10))
      const before = await run(0)
      expect(before.code, before.output).toBe(0)
      expect(http.requests).toHaveLength(0)
      expect((await watermark()).gaps).toHaveLength(1)
      await held`commit`
    } finally {
      held.release()
    }
    const after = await run(15)
    expect(after.code, after.output).toBe(0)
    expect(slackTitles()).toEqual([':rotating_light: Brute force: 10 failed logins from 192.0.2.66'])
    expect(await db.sql`select 1 from jobs.messages where kind = 'alert'`).toHaveLength(1)
    expect((await watermark()).gaps).toHaveLength(0)
  })

  it('drops the gap of a rolled-back insert once no transaction can fill it', async () => {
    expect((await run(-20)).code).toBe(0)
    const held = await db.sql.reserve()
    try {
      await held`begin`
      await insert([{ at: at(-5), action: 'auth.logout', actor: 3 }], held)
      await insert([{ at: at(-4), action: 'auth.logout', actor: 4 }])
      expect((await run(0)).code).toBe(0)
      // Still in flight: the gap stays even long after it was seen.
      expect((await run(30)).code).toBe(0)
      expect((await watermark()).gaps).toHaveLength(1)
      await held`rollback`
    } finally {
      held.release()
    }
    expect((await run(45)).code).toBe(0)
    expect(await watermark()).toMatchObject({ gaps: [] })
  })

  it('sends nothing, records nothing and moves no watermark in a dry run', async () => {
    await insert(failures(10, (i) => ({ ip: '203.0.113.10', metadata: { email: `v${i}@example.com` } })))
    await insert([{ at: at(-24), action: 'api_key.created', actor: 1, target: '77', targetType: 'credential' }])
    const dry = await run(0, {}, ['--dry-run'])
    expect(dry.code, dry.output).toBe(0)
    expect(dry.output).toContain('would send alert')
    expect(http.requests).toHaveLength(0)
    expect(smtp.messages).toHaveLength(0)
    expect(await db.sql`select 1 from jobs.messages`).toHaveLength(0)
    expect(await db.sql`select 1 from jobs.incidents`).toHaveLength(0)
    expect(await watermark()).toBeUndefined()

    expect((await run(0)).code).toBe(0)
    expect(http.requests).toHaveLength(1)
    expect(await db.sql`select 1 from jobs.messages where kind = 'alert'`).toHaveLength(2)
  })

  it('reads its thresholds from the environment and rejects a bad one with exit 2', async () => {
    await insert(failures(3, () => ({ ip: '203.0.113.3', metadata: { email: 'u@example.com' } })))
    const bad = await run(0, { SECURITY_FAILED_LOGINS_PER_IP: 'ten' })
    expect(bad.code).toBe(2)
    expect(bad.output).toContain('SECURITY_FAILED_LOGINS_PER_IP')
    expect((await run(0, { SECURITY_FAILED_LOGINS_PER_IP: '3' })).code).toBe(0)
    expect(slackTitles()).toEqual([':rotating_light: Brute force: 3 failed logins from 203.0.113.3'])
  })
})
