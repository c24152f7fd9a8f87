import type { ServerResponse } from 'node:http'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { type RunningScript, runJobScript, startScript } from './support/run.ts'
import {
  type CapturedRequest,
  type HttpCapture,
  httpFaults,
  type SmtpCapture,
  startHttp,
  startSmtp,
} from './support/servers.ts'

// security-alerts under kills and a hanging Slack: its alerts leave through the outbox, so none is lost and a repeat
// only comes from a crash while a channel was being sent to (docs/reference.md, the outbox).

const script = 'scripts/notifications/security-alerts.ts'
const job = 'notifications/security-alerts'
const t0 = Date.parse('2026-11-28T12:00:00Z')
const at = (minutes: number) => new Date(t0 + minutes * 60_000)
const answer = (_req: CapturedRequest, res: ServerResponse) => void res.end('ok')

let db: TestDatabase
let smtp: SmtpCapture
let slack: HttpCapture

beforeAll(async () => {
  ;[db, smtp, slack] = await Promise.all([createTestDatabase('security_delivery'), startSmtp(), startHttp()])
})
afterAll(async () => {
  await Promise.all([smtp?.close(), slack?.close()])
})
// A test that failed half-way must not leave a job running (and holding its lock) into the next one.
const children = new Set<RunningScript>()
afterEach(async () => {
  for (const running of children) running.child.kill('SIGKILL')
  await Promise.all([...children].map((r) => r.done))
  children.clear()
})

beforeEach(async () => {
  await db.sql`truncate audit_logs, users, jobs.job_state, jobs.incidents, jobs.messages restart identity cascade`
  await db.sql`insert into users (id, email, role) values (1, 'alice@example.com', 'owner'), (4, 'dave@example.com', 'user')`
  smtp.messages.length = 0
  smtp.attempts.length = 0
  smtp.setFault(undefined)
  slack.requests.length = 0
  slack.setHandler(answer)
})

/** A run in this process, where the process itself is not under test. */
const run = () => runJobScript(script, { env: env() })

/** A run as its own process, to be killed. */
function start(): RunningScript {
  const running = startScript(script, { env: env() })
  children.add(running)
  return running
}

const env = () => ({
  DATABASE_URL: db.url,
  ADMIN_JOBS_NOW: at(0).toISOString(),
  SLACK_WEBHOOK_URL: `${slack.url}/hook`,
  SMTP_URL: smtp.url,
  ALERT_EMAIL_FROM: 'jobs@example.com',
  ALERT_EMAIL_TO: 'security@example.com',
})

/** `count` data.export events of 10,000 rows and more, each its own mass-export alert; returns their titles. */
async function massExports(count: number, first = 0) {
  for (let i = first; i < first + count; i++)
    await db.sql`
      insert into audit_logs (occurred_at, actor_id, action, target_type, target_id, ip, metadata)
      values (${at(-50 + (i % 45))}, 4, 'data.export', 'table', 'users', '10.0.0.4', ${db.sql.json({ rows: 10_000 + i })})`
  return Array.from(
    { length: count },
    (_, i) => `Mass export: dave@example.com exported ${(10_000 + first + i).toLocaleString('en-US')} rows`,
  )
}

/** A brute force from its own IP (10 failed logins, each for another account) and a mass export: two alerts. */
async function attack(round: number): Promise<string[]> {
  const ip = `198.18.0.${round + 1}`
  for (let i = 0; i < 10; i++)
    await db.sql`
      insert into audit_logs (occurred_at, action, ip, metadata)
      values (${at(-14 + i)}, 'auth.login_failed', ${ip}, ${db.sql.json({ email: `r${round}.${i}@example.com` })})`
  return [`Brute force: 10 failed logins from ${ip}`, ...(await massExports(1, round))]
}

/** Resolves once `condition` holds; fails when the job exits first or 30 s pass. */
async function until(condition: () => boolean | Promise<boolean>, running: RunningScript) {
  let exited = false
  void running.done.then(() => (exited = true))
  const deadline = Date.now() + 30_000
  while (!(await condition())) {
    if (exited || Date.now() > deadline) throw new Error(`the job did not reach the point:\n${running.output()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Connections of job processes to the test database (the job's pool and the runner's). */
async function jobConnections(where = db.sql`true`) {
  const [row] = await db.sql<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity
    where datname = current_database() and application_name like 'admin-jobs%' and ${where}`
  return row!.n
}

async function kill(running: RunningScript) {
  running.child.kill('SIGKILL')
  expect((await running.done).signal).toBe('SIGKILL')
}

/** Waits until the killed job's connections ended (the server saw them close): then its lock is free again. */
async function gone() {
  const deadline = Date.now() + 10_000
  while ((await jobConnections()) > 0) {
    if (Date.now() > deadline) throw new Error('the killed job still has connections to the database')
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** What the killed run had claimed waits for its 2-minute lease to run out: that much later, as far as delivery is concerned. */
const later = () =>
  db.sql`
    update jobs.deliveries set lease_until = now() - interval '1 second', next_attempt_at = now()
    where status in ('sending', 'pending')`

const queuedTitles = async () =>
  (await db.sql<{ title: string }[]>`select title from jobs.messages where kind = 'alert'`).map((r) => r.title)

const watermark = async () =>
  (await db.sql`select value from jobs.job_state where job = ${job} and key = 'watermark'`)[0]?.value as
    | { lastId: string }
    | undefined

type KillPoint = 'before the commit' | 'delivering while Slack hangs' | 'mid email'

describe('notifications/security-alerts under kills and a hanging Slack', () => {
  it('loses no alert to SIGKILL before the commit, during delivery or mid email, and repeats only what was in flight', async () => {
    const warmUp = await run()
    expect(warmUp.code, warmUp.output).toBe(0)
    const points: KillPoint[] = ['before the commit', 'delivering while Slack hangs', 'mid email']
    const kills: Record<KillPoint, number> = {
      'before the commit': 0,
      'delivering while Slack hangs': 0,
      'mid email': 0,
    }
    const expected: string[] = []
    for (let round = 0; round < 9; round++) {
      const point = points[round % points.length]!
      const titles = await attack(round)
      expected.push(...titles)
      await later()
      const mark = await watermark()
      if (point === 'before the commit') {
        // The job blocks on the watermark row, its last write before the commit, with every alert written.
        const held = await db.sql.reserve()
        try {
          await held`begin`
          await held`select 1 from jobs.job_state where job = ${job} and key = 'watermark' for update`
          const running = start()
          await until(async () => (await jobConnections(db.sql`wait_event_type = 'Lock'`)) > 0, running)
          await kill(running)
        } finally {
          await held`rollback`
          held.release()
        }
        await gone()
        // Nothing of the run committed: the next run reads the same rows again.
        expect(await queuedTitles()).not.toContain(titles[0])
        expect(await watermark()).toEqual(mark)
      } else if (point === 'delivering while Slack hangs') {
        slack.setHandler(httpFaults.hang())
        const before = slack.requests.length
        const running = start()
        await until(() => slack.requests.length > before, running)
        await kill(running)
        await gone()
        slack.setHandler(answer)
        expect(await queuedTitles()).toEqual(expect.arrayContaining(titles))
      } else {
        smtp.setFault({ kind: 'hang-after-data' })
        const before = smtp.attempts.length
        const running = start()
        // The mail server has the message; the job, killed before the answer, cannot know.
        await until(() => smtp.attempts.length > before, running)
        await kill(running)
        await gone()
        smtp.setFault(undefined)
        expect(await queuedTitles()).toEqual(expect.arrayContaining(titles))
      }
      kills[point]++
    }
    await later()
    const last = await run()
    expect(last.code, last.output).toBe(0)

    // Every alert was queued exactly once, and every delivery ended sent.
    expect((await queuedTitles()).sort()).toEqual([...expected].sort())
    expect(await db.sql`select channel, status from jobs.deliveries where status <> 'sent'`).toEqual([])

    const emails = new Map<string, Set<string>>()
    const emailCounts = new Map<string, number>()
    // Every message that reached the mail server in full counts, answered or not: the job may have sent it again.
    for (const m of smtp.attempts) {
      const title = m.subject!.replace('[critical] ', '')
      emailCounts.set(title, (emailCounts.get(title) ?? 0) + 1)
      emails.set(title, (emails.get(title) ?? new Set()).add(m.messageId!))
    }
    const slackCounts = new Map<string, number>()
    for (const r of slack.requests) {
      const title = (r.json().text as string).replace(':rotating_light: ', '')
      slackCounts.set(title, (slackCounts.get(title) ?? 0) + 1)
    }
    const crashesDuringSend = kills['delivering while Slack hangs'] + kills['mid email']
    const lost = (counts: Map<string, number>) => expected.filter((t) => !counts.get(t))
    const repeats = (counts: Map<string, number>) => [...counts.values()].reduce((n, c) => n + c - 1, 0)
    console.info(
      `security-alerts kills: ${Object.entries(kills)
        .map(([p, n]) => `${n} ${p}`)
        .join(
          ', ',
        )}; alerts ${expected.length}; lost by email ${lost(emailCounts).length}, by Slack ${lost(slackCounts).length}; ` +
        `repeats by email ${repeats(emailCounts)}, by Slack ${repeats(slackCounts)} (bound ${crashesDuringSend} each)`,
    )
    expect(lost(emailCounts)).toEqual([])
    expect(lost(slackCounts)).toEqual([])
    expect([...emailCounts.keys()].sort()).toEqual([...expected].sort())
    expect([...slackCounts.keys()].sort()).toEqual([...expected].sort())
    // A repeat of an email carries the Message-ID of the first copy.
    expect([...emails.values()].every((ids) => ids.size === 1)).toBe(true)
    // Each kill during a send leaves at most the message in flight on each channel to go again; and it does go again.
    expect(repeats(emailCounts)).toBeLessThanOrEqual(crashesDuringSend)
    expect(repeats(slackCounts)).toBeLessThanOrEqual(crashesDuringSend)
    expect(repeats(emailCounts)).toBeGreaterThanOrEqual(kills['mid email'])
    expect(repeats(slackCounts)).toBeGreaterThanOrEqual(kills['delivering while Slack hangs'])
    expect(Math.max(...emailCounts.values(), ...slackCounts.values())).toBeLessThanOrEqual(1 + crashesDuringSend)
  }, 180_000)

  it('queues all 43 findings of a run while Slack hangs, emails them at once, and posts them all once Slack answers', async () => {
    const expected = await massExports(43)
    slack.setHandler(httpFaults.hang())
    const started = Date.now()
    const first = await run()
    const tookMs = Date.now() - started
    expect(first.code, first.output).toBe(0)
    expect(first.stdout).toMatch(/security rules evaluated .*findings=43 alerted=43 /)
    expect((await queuedTitles()).sort()).toEqual([...expected].sort())
    // Email does not wait for Slack: all 43 went out in the same run, while Slack got one post that never answered.
    expect(smtp.attempts.map((m) => m.subject!.replace('[critical] ', '')).sort()).toEqual([...expected].sort())
    expect(slack.requests).toHaveLength(1)
    expect(first.stderr).toContain('slack delivery failed; the message stays queued')
    expect(tookMs).toBeLessThan(60_000)
    const queueMs = Number(/alertsMs=(\d+)/.exec(first.stdout)?.[1])
    console.info(`43 findings with Slack hanging: queued in ${queueMs} ms, run took ${tookMs} ms`)

    slack.setHandler(answer)
    slack.requests.length = 0
    await later()
    const second = await run()
    expect(second.code, second.output).toBe(0)
    const posted = slack.requests.map((r) => (r.json().text as string).replace(':rotating_light: ', ''))
    expect(posted.sort()).toEqual([...expected].sort())
    expect(smtp.attempts).toHaveLength(43)
    expect(await db.sql`select 1 from jobs.deliveries where status <> 'sent'`).toEqual([])
  }, 120_000)
})
