import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runJobScript as runScript } from './support/run.ts'

const fixture = (name: string) => `test/fixtures/scripts/test/${name}.ts`

let db: TestDatabase

beforeAll(async () => {
  db = await createTestDatabase('runner_outcomes')
})

async function runsOf(job: string) {
  return db.sql`select * from jobs.runs where job = ${job} order by id`
}

describe('a job run records its outcome', () => {
  it('records a succeeded run with its trigger, attempt, stats, times and dry-run flag', async () => {
    const before = new Date()
    const result = await runScript(fixture('ok'), { env: { DATABASE_URL: db.url } })
    expect(result.code, result.output).toBe(0)
    const [run, ...more] = await runsOf('test/ok')
    expect(more).toHaveLength(0)
    expect(run).toMatchObject({
      status: 'succeeded',
      trigger: 'local',
      attempt: 1,
      dry_run: false,
      stats: { processed: 3, skipped: 1 },
      error: null,
      run_url: null,
    })
    expect(run.started_at.getTime()).toBeGreaterThanOrEqual(before.getTime() - 1000)
    expect(run.finished_at.getTime()).toBeGreaterThanOrEqual(run.started_at.getTime())
    expect(result.stdout).toMatch(/\[test\/ok\] starting/)
    expect(result.stdout).toMatch(/\[test\/ok\] succeeded in [\d.]+m?s processed=3 skipped=1/)
  })

  it('passes --dry-run and DRY_RUN=true to the job and records the dry-run flag', async () => {
    const flag = await runScript(fixture('ok'), { args: ['--dry-run'], env: { DATABASE_URL: db.url } })
    const variable = await runScript(fixture('ok'), { env: { DATABASE_URL: db.url, DRY_RUN: 'true' } })
    expect(flag.code, flag.output).toBe(0)
    expect(variable.code, variable.output).toBe(0)
    expect(flag.stdout).toContain('ok fixture ran dryRun=true')
    expect(variable.stdout).toContain('ok fixture ran dryRun=true')
    const runs = await runsOf('test/ok')
    expect(runs.slice(-2).map((r) => r.dry_run)).toEqual([true, true])
  })

  it('records a failed run with the error and its stack, and exits 1', async () => {
    const result = await runScript(fixture('fail'), { env: { DATABASE_URL: db.url } })
    expect(result.code, result.output).toBe(1)
    const [run] = await runsOf('test/fail')
    expect(run.status).toBe('failed')
    expect(run.finished_at).toBeInstanceOf(Date)
    expect(run.error).toMatch(/^Error: widget sync failed: upstream said no/)
    expect(run.error).toMatch(/at .*fail\.ts:\d+:\d+/)
    expect(run.error).toContain('Caused by: Error: the root cause')
    expect(result.stderr).toMatch(/failed in [\d.]+m?s: widget sync failed: upstream said no/)
    // A critical job with no alert channel configured still says so, as a warning.
    expect(result.stderr).toMatch(/WARN .*alert \(no channel configured\): \[critical\] test\/fail failed/)
  })

  it('retries a transient error with backoff and succeeds on the next attempt', async () => {
    const result = await runScript(fixture('transient'), { env: { DATABASE_URL: db.url, FIXTURE_FAILURES: '2' } })
    expect(result.code, result.output).toBe(0)
    expect(result.stderr).toMatch(/attempt 1 failed with a transient error; retrying in \d+ms/)
    expect(result.stderr).toMatch(/attempt 2 failed with a transient error; retrying in \d+ms/)
    expect(result.stdout).toContain('attempt 3')
    const runs = await runsOf('test/transient')
    expect(runs.at(-1)).toMatchObject({ status: 'succeeded', stats: { attempts: 3 }, error: null })
  })

  it('does not retry a non-transient error', async () => {
    const result = await runScript(fixture('transient'), {
      env: { DATABASE_URL: db.url, FIXTURE_FAILURES: '1', FIXTURE_CODE: '23505' },
    })
    expect(result.code, result.output).toBe(1)
    expect(result.output).not.toContain('retrying')
    const runs = await runsOf('test/transient')
    expect(runs.at(-1)!.status).toBe('failed')
    expect(runs.at(-1)!.error).toContain('simulated failure 1 (SQLSTATE 23505)')
  })

  it('gives up after the configured number of attempts when the error stays transient', async () => {
    const result = await runScript(fixture('transient'), { env: { DATABASE_URL: db.url, FIXTURE_FAILURES: '9' } })
    expect(result.code, result.output).toBe(1)
    expect(result.stderr.match(/failed with a transient error/g)).toHaveLength(3)
    const runs = await runsOf('test/transient')
    expect(runs.at(-1)!.error).toContain('simulated failure 4 (SQLSTATE 40001)')
  })

  it('rejects an unknown flag with exit 2 before writing anything', async () => {
    const before = await db.sql`select count(*)::int as n from jobs.runs`
    const result = await runScript(fixture('ok'), { args: ['--frobnicate'], env: { DATABASE_URL: db.url } })
    expect(result.code, result.output).toBe(2)
    expect(result.stderr).toContain('unknown flag --frobnicate')
    const after = await db.sql`select count(*)::int as n from jobs.runs`
    expect(after[0].n).toBe(before[0].n)
  })
})
