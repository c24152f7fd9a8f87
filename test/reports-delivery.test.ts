import fs from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { defineJob } from '@admin-jobs/sdk'
import { runInProcess } from '@admin-jobs/sdk/testing'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { reportJob } from '#reports'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript, startScript } from './support/run.ts'
import { type HttpCapture, httpFaults, type SmtpCapture, startHttp, startSmtp } from './support/servers.ts'

const script = 'scripts/reports/daily.ts'
const key = 'report:daily:2026-11-27'

let db: TestDatabase
let smtp: SmtpCapture
let slack: HttpCapture
let reportsDir: string

beforeAll(async () => {
  db = await createTestDatabase('reports_delivery')
  ;[smtp, slack] = await Promise.all([startSmtp(), startHttp()])
  reportsDir = await fs.mkdtemp(path.join(tmpdir(), 'reports-delivery-'))
  await db.sql`
    insert into audit_logs (occurred_at, actor_id, action) values
      ('2026-11-27T09:00:00Z', 1, 'auth.login'), ('2026-11-27T10:00:00Z', 2, 'auth.login')`
})

afterAll(async () => {
  await Promise.all([smtp?.close(), slack?.close()])
  await fs.rm(reportsDir, { recursive: true, force: true })
})

beforeEach(async () => {
  await db.sql`truncate jobs.messages, jobs.reports, jobs.runs cascade`
  smtp.messages.length = 0
  smtp.setFault(undefined)
  slack.requests.length = 0
  slack.setHandler((_req, res) => void res.end('ok'))
})

const env = (extra: Record<string, string> = {}) => ({
  DATABASE_URL: db.url,
  ADMIN_JOBS_NOW: '2026-11-28T01:13:00Z',
  REPORTS_DIR: reportsDir,
  SMTP_URL: smtp.url,
  ALERT_EMAIL_TO: 'ops@example.com',
  ALERT_EMAIL_FROM: 'jobs@example.com',
  SLACK_WEBHOOK_URL: `${slack.url}/hook`,
  ...extra,
})

const deliveries = () => db.sql`
  select d.channel, d.status from jobs.deliveries d join jobs.messages m on m.id = d.message_id
  where m.key = ${key} order by d.channel`

/** Resolves once Slack took the report while its email waits on the mail server (claimed, not sent). */
async function emailBeingSent(timeoutMs = 20_000) {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    const rows = await deliveries()
    const status = (channel: string) => rows.find((d) => d.channel === channel)?.status
    if (status('email') === 'sending' && status('slack') === 'sent') return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error('the report email was never claimed for sending')
}

const settled = () => new Promise((r) => setTimeout(r, 300))

describe('a report run that dies while the mail server is slow to greet', () => {
  it('killed (SIGKILL): keeps the report queued, never calls it sent, and a later run of any job delivers it once', async () => {
    smtp.setFault({ kind: 'slow-greeting', delayMs: 60_000 })
    const run = startScript(script, { env: env() })
    await emailBeingSent()
    run.child.kill('SIGKILL')
    expect((await run.done).signal).toBe('SIGKILL')
    // The report was stored and its message committed before delivery began; Slack did not wait for the mail server.
    expect(await db.sql`select generations from jobs.reports where period = '2026-11-27'`).toEqual([{ generations: 1 }])
    expect(await deliveries()).toEqual([
      { channel: 'email', status: 'sending' },
      { channel: 'slack', status: 'sent' },
    ])
    expect(smtp.messages).toHaveLength(0)

    // A re-run right away says what the outbox knows, and does not queue a second copy.
    smtp.setFault(undefined)
    const rerun = await runScript(script, { env: env() })
    expect(rerun.code, rerun.output).toBe(0)
    expect(rerun.output).not.toContain('already sent')
    expect(rerun.output).toContain('not delivered everywhere yet')
    expect(rerun.output).toMatch(/email sending \(1 attempt\); slack sent/)
    expect(await db.sql`select 1 from jobs.messages where key like ${`${key}%`}`).toHaveLength(1)

    // The dead run's claim lasts its lease (2 minutes); by the next scheduled run it has run out.
    await db.sql`update jobs.deliveries set lease_until = now() - interval '1 second' where status = 'sending'`
    const other = await runScript('test/fixtures/scripts/test/ok.ts', { env: env() })
    expect(other.code, other.output).toBe(0)
    expect((await smtp.waitFor(1))[0]!.subject).toBe('Daily activity report: Fri, 27 Nov 2026')
    expect(await deliveries()).toEqual([
      { channel: 'email', status: 'sent' },
      { channel: 'slack', status: 'sent' },
    ])
    const last = await runScript(script, { env: env() })
    expect(last.output).toContain('already sent for this period')
    await settled()
    expect([smtp.messages.length, slack.requests.length]).toEqual([1, 1])
  })

  it('stopped (SIGTERM, an Actions cancel): hands the email back at once, and the next run delivers it once', async () => {
    smtp.setFault({ kind: 'slow-greeting', delayMs: 60_000 })
    const run = startScript(script, { env: env() })
    await emailBeingSent()
    const stoppedAt = Date.now()
    run.child.kill('SIGTERM')
    const stopped = await run.done
    // The job had finished and its outcome was recorded: the stop only cut its delivery short, well within the bound.
    expect(stopped.code, stopped.output).toBe(0)
    expect(Date.now() - stoppedAt).toBeLessThan(5_000)
    expect(await deliveries()).toEqual([
      { channel: 'email', status: 'pending' },
      { channel: 'slack', status: 'sent' },
    ])
    const [runRow] = await db.sql`select status from jobs.runs where job = 'reports/daily'`
    expect(runRow!.status).toBe('succeeded')

    smtp.setFault(undefined)
    const next = await runScript(script, { env: env() })
    expect(next.code, next.output).toBe(0)
    expect(next.output).not.toContain('already sent')
    expect((await smtp.waitFor(1))[0]!.attachments.map((a) => a.filename)).toEqual([
      'daily-2026-11-27.png',
      'daily-2026-11-27.csv',
    ])
    const again = await runScript(script, { env: env() })
    expect(again.output).toContain('already sent for this period')
    await settled()
    expect([smtp.messages.length, slack.requests.length]).toEqual([1, 1])
  })
})

describe('a channel that fails', () => {
  it('stays queued while Slack hangs, without holding up the email, and reaches Slack once it answers', async () => {
    slack.setHandler(httpFaults.hang())
    const first = await runScript(script, { env: env() })
    // Delivery comes after the outcome: the report is made and stored; the outbox keeps the post. The delivery outlasts
    // a heartbeat, and the run's own closed row is not taken for another run's fence.
    expect(first.code, first.output).toBe(0)
    expect(first.stderr).toContain('slack delivery failed; the message stays queued')
    expect(first.output).not.toContain('closed by another run')
    expect(await deliveries()).toEqual([
      { channel: 'email', status: 'sent' },
      { channel: 'slack', status: 'pending' },
    ])
    const rerun = await runScript(script, { env: env() })
    expect(rerun.output).not.toContain('already sent')
    expect(rerun.output).toContain('not delivered everywhere yet')
    expect(rerun.output).toMatch(/email sent [^;]+; slack pending \(1 attempt: Slack webhook request failed/)

    // The re-run did not post again: the failed post waits out its backoff.
    const tried = slack.requests.length
    slack.setHandler((_req, res) => void res.end('ok'))
    await db.sql`update jobs.deliveries set next_attempt_at = now() where status = 'pending'`
    const healed = await runScript(script, { env: env() })
    expect(healed.code, healed.output).toBe(0)
    await settled()
    expect(smtp.messages).toHaveLength(1)
    expect(slack.requests.length - tried).toBe(1)
    expect(slack.requests.at(-1)!.json().text).toContain('Daily activity report: Fri, 27 Nov 2026')
    expect((await deliveries()).map((d) => d.status)).toEqual(['sent', 'sent'])
  })
})

describe('report settings', () => {
  const job = defineJob(reportJob('daily', 'daily report'))
  const runs = async () => (await db.sql`select count(*)::int as n from jobs.runs`)[0]!.n as number

  it('refuses a malformed --period with exit 2 before connecting, writing no history row', async () => {
    const result = await runScript(script, { args: ['--period', '2026-13-01'], env: env() })
    expect(result.code, result.output).toBe(2)
    expect(result.output).toContain('--period (or REPORT_PERIOD) must be YYYY-MM-DD (got "2026-13-01")')
    expect(await runs()).toBe(0)
  })

  it('refuses every bad setting with exit 2, naming it, without a connection or a history row', async () => {
    const cases: [Record<string, string>, string[], string][] = [
      [{ REPORT_PERIOD: 'yesterday' }, [], 'must be YYYY-MM-DD (got "yesterday")'],
      [{}, ['--period', '2026-11-28'], '--period (or REPORT_PERIOD) 2026-11-28 has not ended yet'],
      [{ REPORT_PERIOD: '2026-11-30' }, [], 'has not ended yet'],
      [{ REPORT_TIMEZONE: 'Mars/Olympus' }, [], 'REPORT_TIMEZONE is not a known IANA time zone'],
      [{ REPORT_FORCE: 'maybe' }, [], 'REPORT_FORCE must be true or false (got "maybe")'],
    ]
    for (const [extra, argv, message] of cases) {
      const result = await runInProcess(job, { id: 'reports/daily', env: env(extra), argv })
      expect(result.code, result.output).toBe(2)
      expect(result.output).toContain(message)
      // The same settings against a server nobody listens on: still exit 2, so nothing was tried before the check.
      const offline = await runInProcess(job, {
        id: 'reports/daily',
        env: env({ ...extra, DATABASE_URL: 'postgres://postgres@127.0.0.1:9/none' }),
        argv,
      })
      expect(offline.code, offline.output).toBe(2)
    }
    expect(await runs()).toBe(0)
    expect(await db.sql`select 1 from jobs.reports`).toHaveLength(0)
  })

  it('takes --period over REPORT_PERIOD, and still refuses a malformed REPORT_PERIOD beside it', async () => {
    const offline = { SMTP_URL: '', SLACK_WEBHOOK_URL: '' }
    const argv = ['--period', '2026-11-26']
    const bad = await runInProcess(job, { id: 'reports/daily', env: env({ ...offline, REPORT_PERIOD: 'x' }), argv })
    expect(bad.code, bad.output).toBe(2)
    const ok = await runInProcess(job, {
      id: 'reports/daily',
      env: env({ ...offline, REPORT_PERIOD: '2026-11-20' }),
      argv,
    })
    expect(ok.code, ok.output).toBe(0)
    expect(ok.output).toContain('nothing queued')
    expect(await db.sql`select period from jobs.reports`).toEqual([{ period: '2026-11-26' }])
  })
})
