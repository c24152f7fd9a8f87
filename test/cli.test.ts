import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { cliScript, runScript } from './support/run.ts'

let db: TestDatabase
const cli = cliScript

beforeAll(async () => {
  db = await createTestDatabase('cli')
})

describe('pnpm jobs', () => {
  it('lists every job under scripts/ with its workflow schedule, next run and last result as JSON', async () => {
    await runScript('scripts/cleanup/sessions.ts', { env: { DATABASE_URL: db.url } })
    const result = await runScript(cli, { args: ['list', '--json'], env: { DATABASE_URL: db.url } })
    expect(result.code, result.stderr).toBe(0)
    const jobs = JSON.parse(result.stdout)
    const sessions = jobs.find((j: { job: string }) => j.job === 'cleanup/sessions')
    expect(sessions.schedule.cron).toEqual(['7 */6 * * *'])
    expect(sessions.schedule.words).toMatch(/every 6 hours/)
    expect(new Date(sessions.nextRun).getUTCMinutes()).toBe(7)
    expect(sessions.lastRun.status).toBe('succeeded')
    // 4 runs a day × 365/12 days, each billed as one whole minute (setup plus a sub-second job).
    expect(sessions.runsPerMonth).toBe(121.7)
    expect(sessions.actionsMinutesPerMonth).toBe(122)
  })

  it('prints history as a JSON array, newest first, in the shape docs/reference.md gives', async () => {
    await runScript('scripts/cleanup/sessions.ts', { args: ['--dry-run'], env: { DATABASE_URL: db.url } })
    const result = await runScript(cli, {
      args: ['history', 'cleanup/sessions', '--limit', '2', '--json'],
      env: { DATABASE_URL: db.url },
    })
    expect(result.code, result.stderr).toBe(0)
    const runs = JSON.parse(result.stdout)
    expect(runs).toHaveLength(2)
    expect(Object.keys(runs[0]).sort()).toEqual(
      [
        'attempt',
        'dryRun',
        'durationMs',
        'error',
        'finishedAt',
        'id',
        'job',
        'runUrl',
        'startedAt',
        'stats',
        'status',
        'trigger',
      ].sort(),
    )
    expect(runs[0].dryRun).toBe(true)
    expect(runs[0].id).toBeGreaterThan(runs[1].id)
    expect(runs[0].trigger).toBe('local')
    expect(runs[0].durationMs).toBeGreaterThanOrEqual(0)
  })

  it('runs a job by id with the same outcome as running its script', async () => {
    const result = await runScript(cli, {
      args: ['run', 'cleanup/sessions', '--dry-run'],
      env: { DATABASE_URL: db.url },
    })
    expect(result.code, result.output).toBe(0)
    expect(result.stdout).toMatch(/succeeded in .* \(dry run\)/)
  })

  it('refuses an unknown job with exit 2 and names the known jobs', async () => {
    const result = await runScript(cli, { args: ['run', 'cleanup/nothing'], env: { DATABASE_URL: db.url } })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('unknown job "cleanup/nothing"')
    expect(result.stderr).toContain('cleanup/sessions')
  })

  it('refuses an unknown job id in history and resume with exit 2, naming the known jobs', async () => {
    for (const args of [
      ['history', 'nope/job'],
      ['history', 'nope/job', '--json'],
      ['resume', 'nope/job'],
    ]) {
      const result = await runScript(cli, { args, env: { DATABASE_URL: db.url } })
      expect(result.code, `${args.join(' ')}\n${result.output}`).toBe(2)
      expect(result.stderr).toMatch(/unknown job "nope\/job" \(known jobs: .*cleanup\/sessions/)
    }
  })

  it('refuses an unknown command and a bad --limit with exit 2', async () => {
    expect((await runScript(cli, { args: ['frobnicate'], env: { DATABASE_URL: db.url } })).code).toBe(2)
    const bad = await runScript(cli, { args: ['history', '--limit', 'ten'], env: { DATABASE_URL: db.url } })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('--limit')
  })

  it('migrates a database and reports it up to date the second time', async () => {
    const fresh = await createTestDatabase('cli_migrate', { migrate: false })
    const first = await runScript(cli, { args: ['migrate'], env: { DATABASE_URL: fresh.url } })
    expect(first.code, first.output).toBe(0)
    expect(first.stdout).toMatch(/applied \d+ migration/)
    const second = await runScript(cli, { args: ['migrate'], env: { DATABASE_URL: fresh.url } })
    expect(second.stdout).toContain('database is up to date')
    const [{ n }] = await fresh.sql`select count(*)::int as n from jobs.migrations`
    expect(n).toBeGreaterThan(0)
  })

  it('reads a database no job has run against without creating anything in it', async () => {
    const fresh = await createTestDatabase('cli_read_only', { migrate: false })
    const env = { DATABASE_URL: fresh.url }
    const history = await runScript(cli, { args: ['history', '--json'], env })
    expect(history.code, history.output).toBe(0)
    expect(JSON.parse(history.stdout)).toEqual([])
    expect(history.stderr).toContain('DATABASE_URL has no admin-jobs tables yet')
    const status = await runScript(cli, { args: ['status', '--json'], env })
    expect(status.code, status.output).toBe(0)
    const report = JSON.parse(status.stdout) as {
      openIncidents: unknown[]
      jobs: { job: string; lastRun?: unknown; finishedRuns: number }[]
    }
    expect(report.openIncidents).toEqual([])
    const jobs = report.jobs
    expect(jobs.map((j) => j.job)).toContain('backups/database')
    expect(jobs.every((j) => j.lastRun === undefined && j.finishedRuns === 0)).toBe(true)
    const list = await runScript(cli, { args: ['list', '--json'], env })
    expect(list.code, list.output).toBe(0)
    expect(JSON.parse(list.stdout).every((j: { lastRun: unknown }) => j.lastRun === null)).toBe(true)
    const pauses = await runScript(cli, { args: ['pause'], env })
    expect(pauses.code, pauses.output).toBe(0)
    expect(pauses.stdout).toContain('no job is paused')
    const [{ schemas, tables }] = await fresh.sql`
      select (select count(*)::int from pg_namespace where nspname = 'jobs') as schemas,
             (select count(*)::int from pg_tables where schemaname = 'public') as tables`
    expect({ schemas, tables }).toEqual({ schemas: 0, tables: 0 })
  })

  it('reads a database behind this version as it is, and exits 2 naming the fix when a command needs what is missing', async () => {
    const behind = await createTestDatabase('cli_behind')
    await behind.sql`delete from jobs.migrations where name = '0007_operations.sql'`
    await behind.sql`drop table jobs.pauses`
    const env = { DATABASE_URL: behind.url }
    const history = await runScript(cli, { args: ['history', '--json'], env })
    expect(history.code, history.output).toBe(0)
    expect(history.stderr).toContain('DATABASE_URL is 1 migration(s) behind this version (0007_operations.sql)')
    const status = await runScript(cli, { args: ['status'], env })
    expect(status.code, status.output).toBe(2)
    expect(status.stderr).toContain('this command needs them: run `pnpm jobs migrate` first')
    const [{ pauses }] = await behind.sql`select to_regclass('jobs.pauses') is not null as pauses`
    expect(pauses).toBe(false)
  })
})
