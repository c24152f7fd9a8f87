import { spawn } from 'node:child_process'
import { once } from 'node:events'
import os from 'node:os'
import { defineJob, isJob } from '@admin-jobs/sdk'
import { runInProcess } from '@admin-jobs/sdk/testing'
import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript } from './support/run.ts'

let db: TestDatabase

beforeAll(async () => {
  db = await createTestDatabase('runner_lifecycle')
})

const runsOf = (job: string) => db.sql`select * from jobs.runs where job = ${job} order by id`

const quick = (stats: object = { done: 1 }) =>
  defineJob({ description: 'in-process test job', timeout: '30s', run: async () => stats })

describe('a job script', () => {
  it('runs its job when the job was built by a helper in another file', async () => {
    const result = await runScript('test/fixtures/scripts/test/helper-built.ts', { env: { DATABASE_URL: db.url } })
    expect(result.code, result.output).toBe(0)
    expect(result.stdout).toContain('built by a helper')
    const [run] = await runsOf('test/helper-built')
    expect(run).toMatchObject({ status: 'succeeded', stats: { built: 'helper' } })
  })

  it('exits 2 saying so when its default export is not a job, and records nothing', async () => {
    const result = await runScript('test/fixtures/scripts/test/no-job.ts', { env: { DATABASE_URL: db.url } })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('its default export is not a job, so nothing ran')
    expect(await runsOf('test/no-job')).toHaveLength(0)
  })

  it('runs nothing when it is imported rather than run', async () => {
    const module = (await import('./fixtures/scripts/test/helper-built.ts')) as { default: unknown }
    expect(isJob(module.default)).toBe(true)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(await runsOf('test/job')).toHaveLength(0)
  })
})

describe('the run lifecycle', () => {
  it('records the duration history shows and prints the same one on the completion line', async () => {
    const job = defineJob({
      description: 'waits a little',
      timeout: '30s',
      run: async () => {
        await new Promise((resolve) => setTimeout(resolve, 120))
        return { waited: true }
      },
    })
    const { code, output } = await runInProcess(job, { id: 'test/duration', env: { DATABASE_URL: db.url } })
    expect(code, output).toBe(0)
    const [run] = await runsOf('test/duration')
    const historyMs = run.finished_at.getTime() - run.started_at.getTime()
    const printed = /succeeded in (\d+)ms/.exec(output)
    expect(printed, output).not.toBeNull()
    expect(Math.abs(Number(printed![1]) - historyMs)).toBeLessThanOrEqual(1)
    expect(historyMs).toBeGreaterThanOrEqual(120)
  })

  it('does not start beside a run of the job that still beats without the lock, and starts once it is stale', async () => {
    const [other] = await db.sql`
      insert into jobs.runs (job, status, trigger, host, pid, heartbeat_at)
      values ('test/live', 'running', 'local', 'another-host', 4242, now()) returning id`
    const skipped = await runInProcess(quick(), { id: 'test/live', env: { DATABASE_URL: db.url } })
    expect(skipped.code, skipped.output).toBe(0)
    const [, second] = await runsOf('test/live')
    expect(second).toMatchObject({ status: 'skipped' })
    expect(second.note).toMatch(new RegExp(`run ${other.id} of this job is still running without the lock`))

    await db.sql`update jobs.runs set heartbeat_at = now() - interval '2 minutes' where id = ${other.id}`
    const ran = await runInProcess(quick(), { id: 'test/live', env: { DATABASE_URL: db.url } })
    expect(ran.code, ran.output).toBe(0)
    const rows = await runsOf('test/live')
    expect(rows.map((r) => r.status)).toEqual(['failed', 'skipped', 'succeeded'])
    expect(rows[0].note).toMatch(/closed by a later run: no heartbeat since/)
  })

  it('closes at once a run whose process on this machine is gone, however fresh its heartbeat', async () => {
    const child = spawn(process.execPath, ['-e', ''])
    await once(child, 'exit')
    const pid = child.pid!
    await db.sql`
      insert into jobs.runs (job, status, trigger, host, pid, heartbeat_at)
      values ('test/gone', 'running', 'local', ${os.hostname()}, ${pid}, now())`
    const ran = await runInProcess(quick(), { id: 'test/gone', env: { DATABASE_URL: db.url } })
    expect(ran.code, ran.output).toBe(0)
    expect(ran.output).toContain('closed runs left running by a process that died')
    expect((await runsOf('test/gone')).map((r) => r.status)).toEqual(['failed', 'succeeded'])
  })

  it('never overwrites the outcome of a run another run closed as dead meanwhile', async () => {
    const job = defineJob({
      description: 'is closed under its feet',
      timeout: '30s',
      async run({ sql, run }) {
        await sql`update jobs.runs set status = 'failed', finished_at = now(), note = 'closed by the test' where id = ${run.id}`
        return { finished: true }
      },
    })
    const result = await runInProcess(job, { id: 'test/closed', env: { DATABASE_URL: db.url } })
    expect(result.code).toBe(1)
    expect(result.output).toContain('another run closed this one as dead while it was still running')
    const [run] = await runsOf('test/closed')
    expect(run).toMatchObject({ status: 'failed', note: 'closed by the test', stats: null })
  })
})
