import net from 'node:net'
import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript, startScript } from './support/run.ts'

const fixture = (name: string) => `test/fixtures/scripts/test/${name}.ts`

let db: TestDatabase

beforeAll(async () => {
  db = await createTestDatabase('runner_signals')
  await db.sql`create table public.fixture_marks (mark text not null, at timestamptz default now())`
})

async function lastRun(job: string) {
  const [run] = await db.sql`select * from jobs.runs where job = ${job} order by id desc limit 1`
  return run
}

async function marks(mark: string): Promise<number> {
  const [row] = await db.sql`select count(*)::int as n from public.fixture_marks where mark = ${mark}`
  return row!.n
}

describe('a run that is stopped', () => {
  it('times out: cancels the in-flight query, records timed_out and exits 124', async () => {
    const result = await runScript(fixture('timeout'), { env: { DATABASE_URL: db.url } })
    expect(result.code, result.output).toBe(124)
    const run = await lastRun('test/timeout')
    expect(run.status).toBe('timed_out')
    expect(run.error).toMatch(/^AbortedError: timed out after 1\.0s/)
    expect(run.error).toMatch(/Caused by: PostgresError: canceling statement due to user request/)
    // pg_sleep(60) was cancelled on the server rather than waited for.
    expect(run.finished_at.getTime() - run.started_at.getTime()).toBeLessThan(8000)
    const [{ n }] = await db.sql`
      select count(*)::int as n from pg_stat_activity where datname = ${db.name} and query like '%pg_sleep(60)%'
        and pid <> pg_backend_pid()`
    expect(n).toBe(0)
    expect(result.stderr).toMatch(/timed out in [\d.]+s/)
  })

  it('on SIGTERM rolls back the open transaction, records cancelled and exits 143', async () => {
    const job = startScript(fixture('tx'), { env: { DATABASE_URL: db.url, FIXTURE_MARK: 'sigterm' } })
    await job.waitFor('inserted in open transaction')
    job.child.kill('SIGTERM')
    const result = await job.done
    expect(result.code, result.output).toBe(143)
    expect(await marks('sigterm')).toBe(0)
    const run = await lastRun('test/tx')
    expect(run.status).toBe('cancelled')
    expect(run.error).toMatch(/^AbortedError: interrupted by SIGTERM/)
    expect(result.stderr).toMatch(/interrupted by SIGTERM: stopping at the next safe point/)
  })

  it('on SIGINT stops a job waiting on its signal, rolls back and exits 130', async () => {
    const job = startScript(fixture('tx'), {
      env: { DATABASE_URL: db.url, FIXTURE_MARK: 'sigint', FIXTURE_WAIT: 'client' },
    })
    await job.waitFor('inserted in open transaction')
    job.child.kill('SIGINT')
    const result = await job.done
    expect(result.code, result.output).toBe(130)
    expect(await marks('sigint')).toBe(0)
    const run = await lastRun('test/tx')
    expect(run.status).toBe('cancelled')
    expect(run.error).toContain('interrupted by SIGINT')
  })

  it('after SIGKILL, the next run closes the stale running row as failed with a note, takes the lock and succeeds', async () => {
    const killed = startScript(fixture('tx'), { env: { DATABASE_URL: db.url, FIXTURE_MARK: 'killed' } })
    await killed.waitFor('inserted in open transaction')
    const stale = await lastRun('test/tx')
    expect(stale.status).toBe('running')
    killed.child.kill('SIGKILL')
    expect((await killed.done).signal).toBe('SIGKILL')

    const next = await runScript(fixture('tx'), {
      env: { DATABASE_URL: db.url, FIXTURE_MARK: 'after-kill', FIXTURE_HOLD_MS: '0' },
    })
    expect(next.code, next.output).toBe(0)
    expect(next.stderr).toMatch(/closed runs left running by a process that died runs=\d+/)
    const [closed] = await db.sql`select * from jobs.runs where id = ${stale.id}`
    expect(closed.status).toBe('failed')
    expect(closed.finished_at).toBeInstanceOf(Date)
    expect(closed.error).toMatch(/ended without recording an outcome/)
    expect(closed.note).toMatch(/^closed by a later run: no heartbeat since/)
    expect((await lastRun('test/tx')).status).toBe('succeeded')
    expect(await marks('after-kill')).toBe(1)
    expect(await marks('killed')).toBe(0)
  })

  it('lets only one of two concurrent instances run; the other is recorded skipped and exits 0', async () => {
    const first = startScript(fixture('tx'), {
      env: { DATABASE_URL: db.url, FIXTURE_MARK: 'first', FIXTURE_WAIT: 'client' },
    })
    await first.waitFor('inserted in open transaction')
    const second = await runScript(fixture('tx'), {
      env: { DATABASE_URL: db.url, FIXTURE_MARK: 'second', FIXTURE_HOLD_MS: '0' },
    })
    expect(second.code, second.output).toBe(0)
    expect(second.stdout).toContain('skipped: another run of this job holds its lock')
    expect(await marks('second')).toBe(0)
    const skipped = await lastRun('test/tx')
    expect(skipped).toMatchObject({ status: 'skipped', note: 'another run of this job holds its lock' })
    expect(skipped.finished_at).toBeInstanceOf(Date)
    first.child.kill('SIGTERM')
    expect((await first.done).code).toBe(143)
    const [{ running }] = await db.sql`
      select count(*)::int as running from jobs.runs where job = 'test/tx' and status = 'running'`
    expect(running).toBe(0)
  })

  it('stops waiting on a DATABASE_URL that is not PostgreSQL when SIGTERM arrives, and exits 143', async () => {
    // A port that answers like an HTTP proxy and hangs up: postgres.js would reconnect to it forever.
    const server = net.createServer((socket) => {
      socket.on('error', () => {})
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as net.AddressInfo
    try {
      const job = startScript(fixture('ok'), { env: { DATABASE_URL: `postgres://postgres:pw@127.0.0.1:${port}/x` } })
      await job.waitFor('starting')
      await new Promise((r) => setTimeout(r, 1000))
      const signalled = Date.now()
      job.child.kill('SIGTERM')
      const result = await job.done
      expect(result.code, result.output).toBe(143)
      expect(Date.now() - signalled).toBeLessThan(10_000)
      expect(result.stderr).toMatch(/cannot open the database: interrupted by SIGTERM/)
      expect(result.output).not.toContain(':pw@')
    } finally {
      server.close()
    }
  })
})
