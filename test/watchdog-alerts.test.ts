import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { createOpsRoot, type OpsRoot } from './support/ops-root.ts'
import { runJobScript as runScript } from './support/run.ts'
import { type SmtpCapture, startSmtp } from './support/servers.ts'

let db: TestDatabase
let smtp: SmtpCapture
let ops: OpsRoot
// 73 minutes past cleanup/sessions' 12:07 fire time: beyond the hour it is allowed before its lateness is learned.
const now = '2026-11-28T13:20:00Z'

beforeAll(async () => {
  db = await createTestDatabase('watchdog_alerts')
  smtp = await startSmtp()
  ops = createOpsRoot('watchdog')
  ops.writeWorkflows([
    { job: 'cleanup/sessions', cron: ['7 */6 * * *'] },
    { job: 'reports/daily', cron: ['0 1 * * *'] },
    { job: 'cleanup/tokens', cron: ['0 3 * * *'] },
    { job: 'reports/weekly', cron: ['0 2 * * 0'] },
    { job: 'monitoring/watchdog', cron: ['*/30 * * * *'] },
  ])
  const run = (job: string, status: string, startedAt: string, error: string | null = null) =>
    db.sql`insert into jobs.runs (job, status, trigger, started_at, finished_at, error)
           values (${job}, ${status}, 'schedule', ${startedAt}, ${startedAt}::timestamptz + interval '5 seconds', ${error})`
  await run('cleanup/sessions', 'succeeded', '2026-11-28T06:08:00Z')
  await run('reports/daily', 'succeeded', '2026-11-28T01:03:00Z')
  await run('cleanup/tokens', 'succeeded', '2026-11-25T03:01:00Z')
  await run('cleanup/tokens', 'failed', '2026-11-26T03:01:00Z', 'connection refused')
  await run('cleanup/tokens', 'failed', '2026-11-27T03:01:00Z', 'connection refused')
  await run('cleanup/tokens', 'timed_out', '2026-11-28T03:01:00Z', 'timed out after 15m')
  await run('reports/weekly', 'succeeded', '2026-10-04T02:00:00Z')
  await db.sql`insert into jobs.pauses (target, reason, paused_until)
               values ('reports/weekly', 'report rewrite', now() + interval '1 day')`
})
afterAll(() => smtp.close())

function watchdog() {
  return runScript('scripts/monitoring/watchdog.ts', {
    env: {
      DATABASE_URL: db.url,
      ADMIN_JOBS_ROOT: ops.dir,
      ADMIN_JOBS_NOW: now,
      SMTP_URL: smtp.url,
      ALERT_EMAIL_TO: 'ops@example.com',
    },
  })
}

const subjects = (from: number) => smtp.messages.slice(from).map((m) => m.subject ?? '')

describe('monitoring/watchdog alerts', () => {
  it('alerts once for a missed run, naming the expected time and the last run, and once for a failure streak', async () => {
    const result = await watchdog()
    expect(result.code, result.output).toBe(0)
    await smtp.waitFor(2)
    await new Promise((r) => setTimeout(r, 200))
    expect(subjects(0).sort()).toEqual([
      '[warning] cleanup/sessions missed its scheduled run',
      '[warning] cleanup/tokens keeps failing',
    ])
    const missed = smtp.messages.find((m) => m.subject?.includes('missed'))!
    expect(missed.text).toContain('should have started at 2026-11-28 12:07 UTC')
    expect(missed.text).toContain('last run started 2026-11-28 06:08 UTC')
    const failing = smtp.messages.find((m) => m.subject?.includes('keeps failing'))!
    expect(failing.text).toContain('The last 3 runs of cleanup/tokens failed')
    expect(failing.text).toContain('timed out after 15m')
    const [run] = await db.sql`select stats from jobs.runs where job = 'monitoring/watchdog' order by id desc limit 1`
    expect(run!.stats).toMatchObject({ checked: 4, late: 1, stopped: 0, failing: 1, paused: 1 })
  })

  it('stays quiet about a paused job that would otherwise be missed', () => {
    expect(smtp.messages.some((m) => m.text?.includes('reports/weekly'))).toBe(false)
  })

  it('does not repeat an alert while the problem lasts', async () => {
    const before = smtp.messages.length
    const result = await watchdog()
    expect(result.code, result.output).toBe(0)
    await new Promise((r) => setTimeout(r, 300))
    expect(subjects(before)).toEqual([])
  })

  it('sends one recovery notice each when the job runs again and the failing job succeeds', async () => {
    await db.sql`insert into jobs.runs (job, status, trigger, started_at, finished_at)
                 values ('cleanup/sessions', 'succeeded', 'workflow_dispatch', '2026-11-28T12:38:00Z', '2026-11-28T12:38:05Z'),
                        ('cleanup/tokens', 'succeeded', 'workflow_dispatch', '2026-11-28T12:39:00Z', '2026-11-28T12:39:05Z')`
    const before = smtp.messages.length
    expect((await watchdog()).code).toBe(0)
    await smtp.waitFor(before + 2)
    await new Promise((r) => setTimeout(r, 200))
    expect(subjects(before).sort()).toEqual([
      '[resolved] cleanup/sessions runs on schedule again',
      '[resolved] cleanup/tokens succeeds again',
    ])
    const again = smtp.messages.length
    expect((await watchdog()).code).toBe(0)
    await new Promise((r) => setTimeout(r, 300))
    expect(subjects(again)).toEqual([])
  })

  it('refuses an ADMIN_JOBS_ROOT without workflows with exit 2', async () => {
    const result = await runScript('scripts/monitoring/watchdog.ts', {
      env: { DATABASE_URL: db.url, ADMIN_JOBS_ROOT: '/nonexistent' },
    })
    expect(result.code).toBe(2)
    expect(result.output).toContain('ADMIN_JOBS_ROOT')
  })
})
