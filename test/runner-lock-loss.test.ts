import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript, startScript } from './support/run.ts'

const worker = 'test/fixtures/scripts/test/worker.ts'

let db: TestDatabase

beforeAll(async () => {
  db = await createTestDatabase('lock_loss')
})

describe('a run that loses its lock', () => {
  it('stops before its next step and ends failed saying so, and a second instance never works beside it', async () => {
    const first = startScript(worker, { env: { DATABASE_URL: db.url, FIXTURE_MARK: 'first' } })
    await first.waitFor('working')
    await new Promise((resolve) => setTimeout(resolve, 600))
    // The lock dies with its connection: end exactly the session that holds the job's advisory lock.
    const [holder] = await db.sql`
      select l.pid from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and a.datname = current_database() and l.granted`
    expect(holder, 'the job holds an advisory lock').toBeDefined()
    await db.sql`select pg_terminate_backend(${holder!.pid})`
    const lostAt = new Date()

    // A second instance starts at once: it can take the lock, but the first still beats, so it must not start.
    const second = await runScript(worker, {
      env: { DATABASE_URL: db.url, FIXTURE_MARK: 'second', FIXTURE_STEPS: '3' },
    })
    expect(second.code, second.output).toBe(0)
    expect(second.output).toMatch(/skipped: run \d+ of this job is still running without the lock/)

    const result = await first.done
    expect(result.code, result.output).toBe(1)
    expect(result.output).toContain("lost the job's lock")
    const runs = await db.sql`select status, note, error from jobs.runs where job = 'test/worker' order by id`
    expect(runs.map((r) => r.status)).toEqual(['failed', 'skipped'])
    expect(runs[0]!.note).toContain("lost the job's lock")

    // The first stopped within a lock check (5 s) of the loss, and the second wrote nothing.
    const steps = await db.sql`select mark, max(at) as last from public.fixture_steps group by mark`
    expect(steps.map((s) => s.mark)).toEqual(['first'])
    expect(steps[0]!.last.getTime() - lostAt.getTime()).toBeLessThan(6_000)

    // Once the first has ended, the next instance runs.
    const third = await runScript(worker, { env: { DATABASE_URL: db.url, FIXTURE_MARK: 'third', FIXTURE_STEPS: '2' } })
    expect(third.code, third.output).toBe(0)
    const [last] = await db.sql`select status from jobs.runs where job = 'test/worker' order by id desc limit 1`
    expect(last!.status).toBe('succeeded')
  }, 60_000)
})
