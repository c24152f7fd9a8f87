import net from 'node:net'
import { defineJob } from '@admin-jobs/sdk'
import { main } from '@admin-jobs/sdk/cli'
import { formatMs } from '@admin-jobs/sdk/platform'
import { runInProcess } from '@admin-jobs/sdk/testing'
import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { createOpsRoot, type OpsRoot } from './support/ops-root.ts'

let db: TestDatabase
let ops: OpsRoot

beforeAll(async () => {
  db = await createTestDatabase('views')
  ops = createOpsRoot('views')
  ops.writeWorkflows([
    { job: 'demo/stalled', cron: ['*/5 * * * *'] },
    { job: 'demo/flaky', cron: ['0 * * * *'] },
    { job: 'demo/held', cron: ['0 3 * * *'] },
  ])
  const script = `import { defineJob } from '@admin-jobs/sdk'
export default defineJob({ description: 'views fixture', critical: true, async run() { return {} } })
`
  for (const job of ['demo/stalled', 'demo/flaky', 'demo/held']) ops.writeScript(job, script)
})

/** Runs `pnpm jobs <args>` in this process and collects what it prints. */
async function jobs(args: string[], env: Record<string, string | undefined> = { DATABASE_URL: db.url }) {
  const out: string[] = []
  const err: string[] = []
  const code = await main(args, { env, stdout: (s) => out.push(s), stderr: (s) => err.push(s) })
  return { code, stdout: out.join('\n'), stderr: err.join('\n') }
}

const job = (run: Parameters<typeof defineJob>[0]['run']) =>
  defineJob({ description: 'views test job', timeout: '30s', retry: false, run })

describe('pnpm jobs history <run-id>', () => {
  it('shows one run in full: trigger, attempt, run URL, stats, the error with its stack and causes, its log lines', async () => {
    const failing = job(async ({ log }) => {
      log.info('reading the ledger', { rows: 7 })
      log.warn('ledger row 4 looks odd')
      throw new Error('ledger refused', { cause: new Error('disk quota exceeded') })
    })
    const result = await runInProcess(failing, { id: 'test/ledger', env: { DATABASE_URL: db.url } })
    expect(result.code, result.output).toBe(1)
    const [{ id }] = await db.sql`select id from jobs.runs where job = 'test/ledger' order by id desc limit 1`
    const shown = await jobs(['history', String(id)])
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toContain(`run ${id} of test/ledger: failed`)
    expect(shown.stdout).toMatch(/trigger: +local, attempt 1/)
    expect(shown.stdout).toMatch(/run URL: +- \(not on Actions\)/)
    expect(shown.stdout).toMatch(/error:\n {2}Error: ledger refused\n {6}at /)
    expect(shown.stdout).toContain('Caused by: Error: disk quota exceeded')
    expect(shown.stdout).toMatch(/INFO +\[test\/ledger\] reading the ledger rows=7/)
    expect(shown.stdout).toMatch(/WARN +\[test\/ledger\] ledger row 4 looks odd/)

    const json = await jobs(['history', String(id), '--json'])
    expect(json.code, json.stderr).toBe(0)
    const run = JSON.parse(json.stdout)
    expect(Object.keys(run)).toEqual(
      expect.arrayContaining([
        'id',
        'job',
        'status',
        'trigger',
        'attempt',
        'startedAt',
        'finishedAt',
        'durationMs',
        'dryRun',
        'stats',
        'error',
        'runUrl',
        'log',
      ]),
    )
    expect(run).toMatchObject({ id: Number(id), job: 'test/ledger', status: 'failed', trigger: 'local', attempt: 1 })
    expect(run.error).toContain('Caused by: Error: disk quota exceeded')
    const texts = run.log.map((l: { text: string }) => l.text)
    expect(texts).toContain('[test/ledger] reading the ledger rows=7')
    expect(run.log[0]).toEqual({ at: expect.stringMatching(/^\d{4}-/), level: 'info', text: expect.any(String) })
  })

  it('refuses a run id that is not in the history with exit 2, saying where the ids are', async () => {
    const result = await jobs(['history', '999999'])
    expect(result.code).toBe(2)
    expect(result.stderr).toBe('error: no run 999999 in the history (`pnpm jobs history` lists the run ids)')
  })

  it("shows a job's headline stats in the result column, and what a run did (not its timings) for a job without", async () => {
    await db.sql`insert into jobs.runs (job, status, trigger, started_at, finished_at, stats) values
      ('notifications/security-alerts', 'succeeded', 'schedule', now() - interval '2 minutes', now() - interval '119 seconds',
       ${db.sql.json({ events: 862, late: 0, findings: 13, alerted: 13, gaps: 0, more: false, scanMs: 139, ms: 365 })}),
      ('test/plain', 'succeeded', 'local', now() - interval '3 minutes', now() - interval '179 seconds',
       ${db.sql.json({ ms: 12, scanMs: 4, deleted: 3, kept: 9 })})`
    const result = await jobs(['history', '--limit', '3'], { DATABASE_URL: db.url, COLUMNS: '200' })
    expect(result.code, result.stderr).toBe(0)
    const row = (job: string) => result.stdout.split('\n').find((l) => l.includes(job))!
    expect(row('notifications/security-alerts')).toMatch(/findings=13 alerted=13 events=862$/)
    expect(row('test/plain')).toMatch(/kept=9 deleted=3$/)
    expect(result.stdout).not.toMatch(/\bms=|scanMs=/)
  })

  it('gives a run one duration: the completion line, history and status say the same', async () => {
    const slow = job(async () => {
      await new Promise((r) => setTimeout(r, 150))
      return { done: 1 }
    })
    const result = await runInProcess(slow, { id: 'test/slow', env: { DATABASE_URL: db.url } })
    expect(result.code, result.output).toBe(0)
    const logged = /succeeded in (\S+)/.exec(result.output)?.[1]
    const [run] = JSON.parse((await jobs(['history', 'test/slow', '--json'])).stdout)
    expect(run.durationMs).toBeGreaterThanOrEqual(150)
    expect(logged).toBe(formatMs(run.durationMs))
    const status = JSON.parse((await jobs(['status', '--json'])).stdout)
    const slowStatus = status.jobs.find((j: { job: string }) => j.job === 'test/slow')
    expect(slowStatus.lastRun.durationMs).toBe(run.durationMs)
    const [saved] = await db.sql`select line from jobs.run_logs where run_id = ${run.id} and line like '%succeeded in%'`
    expect(saved.line).toContain(`succeeded in ${formatMs(run.durationMs)}`)
  })
})

describe('pnpm jobs status', () => {
  beforeAll(async () => {
    await db.sql`insert into jobs.incidents (key, job, status, severity, title, detail, opened_at, failures) values
      ('security:brute-force-ip:203.0.113.9', 'notifications/security-alerts', 'open', 'critical',
       'Brute force: 236 failed logins from 203.0.113.9', '236 failed logins in 15 minutes', now() - interval '10 minutes', 1),
      ('health:https://shop.example', 'monitoring/health-check', 'open', 'warning', 'shop.example is down',
       'connect ECONNREFUSED', now() - interval '30 minutes', 3),
      ('health:https://old.example', 'monitoring/health-check', 'resolved', 'warning', 'old.example was down',
       null, now() - interval '3 days', 3)`
    // demo/stalled ran every 5 minutes until two days ago; demo/flaky failed its last two runs; demo/held is paused.
    await db.sql`insert into jobs.runs (job, status, trigger, started_at, finished_at)
      select 'demo/stalled', 'succeeded', 'schedule', t, t + interval '2 seconds'
      from generate_series(now() - interval '3 days', now() - interval '2 days', interval '5 minutes') t`
    await db.sql`insert into jobs.runs (job, status, trigger, started_at, finished_at, error) values
      ('demo/flaky', 'succeeded', 'schedule', now() - interval '150 minutes', now() - interval '149 minutes', null),
      ('demo/flaky', 'failed', 'schedule', now() - interval '90 minutes', now() - interval '89 minutes', 'Error: upstream 502'),
      ('demo/flaky', 'failed', 'schedule', now() - interval '30 minutes', now() - interval '29 minutes', 'Error: upstream 503')`
    await db.sql`insert into jobs.pauses (target, reason, paused_until, created_by)
      values ('demo/held', 'vendor migration', now() + interval '29 days', 'alice')`
  })

  const status = (args: string[] = [], env: Record<string, string> = {}) =>
    jobs(['status', ...args, '--root', ops.dir], { DATABASE_URL: db.url, ...env })

  it('puts open incidents first in --json: alerts, security incidents, failing streaks, stopped schedules, pauses', async () => {
    const result = await status(['--json'])
    expect(result.code, result.stderr).toBe(0)
    const report = JSON.parse(result.stdout)
    expect(Object.keys(report)).toEqual(expect.arrayContaining(['openIncidents', 'jobs']))
    const keys = report.openIncidents.map((i: { key: string }) => i.key)
    expect(keys).toEqual([
      'security:brute-force-ip:203.0.113.9',
      'failing:demo/flaky',
      'late:demo/stalled',
      'health:https://shop.example',
      'paused:demo/held',
    ])
    const late = report.openIncidents.find((i: { kind: string }) => i.kind === 'late')
    expect(late.title).toMatch(/^demo\/stalled has stopped: last run 2 days ago \(\d{4}-.* UTC\)$/)
    const paused = report.openIncidents.find((i: { kind: string }) => i.kind === 'paused')
    expect(paused).toMatchObject({ job: 'demo/held', severity: 'info', detail: 'by alice' })
    expect(paused.title).toMatch(/^demo\/held paused until .*: vendor migration$/)
    expect(report.jobs.map((j: { job: string }) => j.job)).toEqual(
      expect.arrayContaining(['demo/stalled', 'demo/flaky', 'demo/held']),
    )
    expect(report.jobs.find((j: { job: string }) => j.job === 'demo/stalled').lateness.samples).toBe(0)
  })

  it('prints the incidents above the jobs, with humane times, fitting 80 columns', async () => {
    const result = await status([], { COLUMNS: '80' })
    expect(result.code, result.stderr).toBe(0)
    const lines = result.stdout.split('\n')
    expect(lines[0]).toBe('Open incidents (5):')
    expect(lines[1]).toMatch(
      /^ {2}!! security Brute force: 236 failed logins from 203\.0\.113\.9 \(since 10 min ago\)$/,
    )
    expect(result.stdout.indexOf('Open incidents')).toBeLessThan(result.stdout.indexOf('job  '))
    expect(result.stdout).toMatch(/demo\/held \*\s+never run\s+-\s+paused\s/)
    expect(result.stdout).toMatch(
      /^ {2}- {2}paused {3}demo\/held paused until \d{4}-\d\d-\d\d \d\d:\d\d UTC: vendor migration$/m,
    )
    expect(result.stdout).toMatch(/demo\/flaky \*\s+failed\s+30 min ago/)
    expect(result.stdout).not.toMatch(/\d+h \d+m/)
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(80)
  })

  it('lists nothing open on a quiet database, saying so', async () => {
    const quiet = await createTestDatabase('views_quiet')
    const result = await jobs(['status', '--root', ops.dir], { DATABASE_URL: quiet.url })
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout.split('\n')[0]).toBe('No open incidents: nothing alerting, late, failing or paused.')
    expect(
      JSON.parse((await jobs(['status', '--json', '--root', ops.dir], { DATABASE_URL: quiet.url })).stdout),
    ).toMatchObject({
      openIncidents: [],
      jobs: expect.any(Array),
    })
  })
})

describe('the terminal', () => {
  it('fits list, history and status to COLUMNS=80 (no line above 80) and keeps whole lines when piped', async () => {
    for (const args of [['list'], ['history'], ['status'], ['pause']]) {
      const narrow = await jobs(args, { DATABASE_URL: db.url, COLUMNS: '80' })
      expect(narrow.code, narrow.stderr).toBe(0)
      for (const line of narrow.stdout.split('\n')) expect(line.length, `${args[0]}: ${line}`).toBeLessThanOrEqual(80)
    }
    const piped = await jobs(['list'])
    expect(Math.max(...piped.stdout.split('\n').map((l) => l.length))).toBeGreaterThan(100)
    expect(piped.stdout).toContain('Actions min/month')
  })

  it('names DATABASE_URL’s host and port in one line when the database is unreachable, the stack only with --verbose', async () => {
    const port = await closedPort()
    const env = { DATABASE_URL: `postgres://ops:hunter22@127.0.0.1:${port}/admin` }
    for (const args of [['list'], ['history'], ['history', '5'], ['status'], ['pause'], ['resume'], ['migrate']]) {
      const result = await jobs(args, env)
      expect(result.code, args.join(' ')).toBe(1)
      expect(result.stderr).toBe(
        `error: cannot open the database at 127.0.0.1:${port} (DATABASE_URL=postgres://ops:***@127.0.0.1:${port}/admin): connect ECONNREFUSED 127.0.0.1:${port}`,
      )
    }
    const verbose = await jobs(['list', '--verbose'], env)
    expect(verbose.code).toBe(1)
    expect(verbose.stderr).toMatch(/\n {4}at /)
    expect(verbose.stderr).toContain('Caused by: Error: connect ECONNREFUSED')
    expect(verbose.stderr).not.toContain('hunter22')
  })

  it('shows pauses in list, and pause all names exempt jobs as exempt and only runs under way as running', async () => {
    await db.sql`insert into jobs.runs (job, status, trigger, started_at, heartbeat_at)
      values ('cleanup/sessions', 'running', 'schedule', now() - interval '3 minutes', now())`
    const paused = await jobs(['pause', 'all', '--until', '2h', '--reason', 'restore'], {
      DATABASE_URL: db.url,
      USER: 'bob',
    })
    expect(paused.code, paused.stderr).toBe(0)
    expect(paused.stdout).toMatch(
      /backups\/database is exempt from pause all \(.+\): it keeps running; to stop it too: pnpm jobs pause backups\/database --until 2h --reason "restore"/,
    )
    expect(paused.stdout).toMatch(/notifications\/security-alerts is exempt from pause all \(attacks do not wait/)
    expect(paused.stdout).toMatch(
      /cleanup\/sessions is running now \(run \d+, started 3 min ago\): it finishes that run/,
    )
    expect(paused.stdout).not.toMatch(/(backups\/database|security-alerts) is running/)
    const list = await jobs(['list', '--json'])
    const rows = JSON.parse(list.stdout) as { job: string; paused: { target: string } | null }[]
    expect(rows.find((r) => r.job === 'cleanup/tokens')?.paused).toMatchObject({ target: 'all', reason: 'restore' })
    expect(rows.find((r) => r.job === 'backups/database')?.paused).toBeNull()
    const text = await jobs(['list'], { DATABASE_URL: db.url, COLUMNS: '120' })
    expect(text.stdout).toMatch(/cleanup\/tokens\s+\S+ \S+ \S+ \S+ \S+\s+paused\s+never run/)
    expect(text.stdout).toMatch(/paused: all jobs until .* UTC: restore \(exempt, still running: backups\/database,/)
    await jobs(['resume'])
  })
})

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}
