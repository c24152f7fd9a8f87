import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pauseJobs, resumeJobs } from '@admin-jobs/sdk/platform'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cleanLeftovers } from '#backups'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { readStepOutputs, stepRuns } from './support/expressions.ts'
import { alive, fakePgDump, stallingPgDump, waitForFile } from './support/pg-tools.ts'
import { runJobScript, runScript, startScript } from './support/run.ts'
import { allSteps, loadWorkflows, type Step } from './support/workflows.ts'

// backups/database killed mid-dump (SIGKILL: no handler runs, the partial file and the `running` row stay), and the
// next run with the job's lock cleaning up after it without touching what a live run is writing; runs that dump
// nothing (skipped by the lock, paused, dry) and what the workflow does after them.

const script = 'scripts/backups/database.ts'
let db: TestDatabase
let dir: string

beforeAll(async () => {
  db = await createTestDatabase('backup_kills')
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aj-backup-kills-'))
  await db.sql`insert into users (id, email, role) select g, 'u' || g || '@example.test', 'user' from generate_series(1, 2000) g`
  await db.sql`insert into audit_logs (action, metadata) select 'auth.login', jsonb_build_object('n', g) from generate_series(1, 5000) g`
})
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: db.url, BACKUP_DIR: dir, ...extra })
const partials = () => fs.readdirSync(dir).filter((f) => f.endsWith('.dump.partial'))

/** Waits until the partial files have stopped growing: the job's write stream trails pg_dump's pipe a little. */
async function settled(list: () => string[]) {
  const sizes = () =>
    list()
      .map((f) => fs.statSync(path.join(dir, f)).size)
      .join(',')
  for (let last = sizes(), i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 100))
    const now = sizes()
    if (now === last) return
    last = now
  }
}

describe('backups/database after kills', () => {
  it('takes as leftovers only files no live run can be writing, and lists without touching in a dry run', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'aj-leftovers-'))
    const [dead, done] = await db.sql<{ id: string }[]>`
      insert into jobs.backups (run_id, database, file, status, taken_at) values
        (900001, 'admin', 'admin-20260101T000000Z.dump', 'running', now()),
        (900002, 'admin', 'admin-20260102T000000Z.dump', 'verified', now())
      returning id`
    const files = {
      'admin-20260101T000000Z.dump.partial': 'a killed run’s dump (its row says running)',
      'admin-20260101T000000Z.dump.sha256.tmp-4242-1': 'the same run’s checksum, half written',
      'admin-20260102T000000Z.dump': 'a complete dump',
      'admin-20260103T000000Z.dump.partial': 'no row, written a moment ago (another deployment’s, live)',
      'admin-20260104T000000Z.dump.partial': 'no row, untouched for 4 hours',
      'notes.txt.partial': 'not a backup',
      'admin.dump.tmp-1-1': 'not a backup name',
    }
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(d, name), text)
    const fourHoursAgo = new Date(Date.now() - 4 * 3_600_000)
    fs.utimesSync(path.join(d, 'admin-20260104T000000Z.dump.partial'), fourHoursAgo, fourHoursAgo)
    const expected = [
      'admin-20260101T000000Z.dump.partial',
      'admin-20260101T000000Z.dump.sha256.tmp-4242-1',
      'admin-20260104T000000Z.dump.partial',
    ]
    try {
      const options = { sql: db.sql, dir: d, runId: 900003, idleMs: 3 * 3_600_000 }
      const listed = await cleanLeftovers({ ...options, dryRun: true })
      expect(listed.closed).toEqual([Number(dead!.id)])
      expect(listed.removed).toEqual(expected)
      expect(fs.readdirSync(d).sort()).toEqual(Object.keys(files).sort())
      const [still] = await db.sql`select status from jobs.backups where id = ${dead!.id}`
      expect(still!.status).toBe('running')

      const cleaned = await cleanLeftovers(options)
      expect(cleaned.closed).toEqual([Number(dead!.id)])
      expect(cleaned.removed).toEqual(expected)
      expect(cleaned.removedBytes).toBe(
        expected.reduce((n, f) => n + Buffer.byteLength(files[f as keyof typeof files]), 0),
      )
      expect(fs.readdirSync(d).sort()).toEqual(
        Object.keys(files)
          .filter((f) => !expected.includes(f))
          .sort(),
      )
      const rows =
        await db.sql`select id, status, error from jobs.backups where id in ${db.sql([dead!.id, done!.id])} order by id`
      expect(rows.map((r) => [r.status, r.error])).toEqual([
        ['failed', 'closed by run 900003: the run writing this dump ended without finishing it (killed?)'],
        ['verified', null],
      ])
      // A second pass finds nothing.
      expect(await cleanLeftovers(options)).toEqual({ closed: [], removed: [], removedBytes: 0 })
    } finally {
      await db.sql`delete from jobs.backups where id in ${db.sql([dead!.id, done!.id])}`
      fs.rmSync(d, { recursive: true, force: true })
    }
  })

  it('leaves no partial file and no running row after 10 SIGKILLs mid-dump once the next run has run', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'aj-killed-dumps-'))
    // The real pg_dump writes the whole dump into the partial file, then the stand-in holds the pipe open until its go
    // file appears: the job is caught mid-dump, with megabytes on disk.
    const bin = fakePgDump('stalling-pg-dump', stallingPgDump(work))
    const started = performance.now()
    const seen: { partials: number; running: number; bytes: number }[] = []
    try {
      for (let kill = 0; kill < 10; kill++) {
        const job = startScript(script, { env: env({ PG_DUMP: path.join(bin, 'pg_dump') }) })
        await waitForFile(path.join(work, 'pid'))
        await settled(partials)
        const [partial] = partials()
        expect(partial, job.output()).toBeDefined()
        const bytes = fs.statSync(path.join(dir, partial!)).size
        job.child.kill('SIGKILL')
        const result = await job.done
        expect(result.signal).toBe('SIGKILL')
        // Let the orphaned stand-in end, then arm the next one.
        fs.writeFileSync(path.join(work, 'go'), '')
        const pid = Number(fs.readFileSync(path.join(work, 'pid'), 'utf8'))
        for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20))
        fs.rmSync(path.join(work, 'go'))
        fs.rmSync(path.join(work, 'pid'))
        const [{ n: running }] = await db.sql<
          { n: number }[]
        >`select count(*)::int as n from jobs.backups where status = 'running'`
        seen.push({ partials: partials().length, running, bytes })
      }
      // Each killed run cleaned up after the one before it: only the last one's debris is left.
      expect(seen.map((s) => [s.partials, s.running])).toEqual(Array.from({ length: 10 }, () => [1, 1]))
      expect(Math.min(...seen.map((s) => s.bytes))).toBeGreaterThan(50_000)

      const next = await runJobScript(script, { env: env() })
      expect(next.code, next.output).toBe(0)
      expect(next.output).toContain('closed 1 backup(s) left running and removed 1 partial dump(s)')
      expect(partials()).toEqual([])
      const [{ n: running }] = await db.sql<
        { n: number }[]
      >`select count(*)::int as n from jobs.backups where status = 'running'`
      expect(running).toBe(0)
      const [{ n: runningRuns }] = await db.sql<
        { n: number }[]
      >`select count(*)::int as n from jobs.runs where job = 'backups/database' and status = 'running'`
      expect(runningRuns).toBe(0)
      const closed = await db.sql<{ status: string; error: string }[]>`
        select status, error from jobs.backups where error like 'closed by run %' order by id`
      expect(closed).toHaveLength(10)
      for (const row of closed) {
        expect(row.status).toBe('failed')
        expect(row.error).toMatch(
          /^closed by run \d+: the run writing this dump ended without finishing it \(killed\?\)$/,
        )
      }
      const [run] = await db.sql`select stats from jobs.runs where job = 'backups/database' order by id desc limit 1`
      expect(run!.stats).toMatchObject({ verification: 'passed', leftoverBackupsClosed: 1, partialsRemoved: 1 })
      expect(run!.stats.partialBytesRemoved).toBe(seen.at(-1)!.bytes)
      console.info(
        `10 SIGKILLs mid-dump in ${Math.round(performance.now() - started)} ms: after each, ${seen.map((s) => s.partials).join('/')} partial file(s) and ${seen.map((s) => s.running).join('/')} running row(s); after the next run 0 and 0; ${closed.length} rows closed as failed`,
      )
    } finally {
      fs.writeFileSync(path.join(work, 'go'), '')
      await new Promise((r) => setTimeout(r, 200))
      fs.rmSync(bin, { recursive: true, force: true })
      fs.rmSync(work, { recursive: true, force: true })
    }
  }, 180_000)

  it('never removes the partial file of a live run: a second instance is held off by the lock and a dry run touches nothing', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'aj-live-dump-'))
    const bin = fakePgDump('live-pg-dump', stallingPgDump(work))
    let live: ReturnType<typeof startScript> | undefined
    try {
      // As on Actions, where the workflow's next steps read the run's outputs (see backups-database.yml).
      const actions = (name: string) => {
        const file = path.join(work, `${name}.output`)
        fs.writeFileSync(file, '')
        return { file, env: { GITHUB_ACTIONS: 'true', GITHUB_OUTPUT: file } }
      }
      const [liveOut, secondOut, dryOut] = [actions('live'), actions('second'), actions('dry')]
      live = startScript(script, { env: env({ PG_DUMP: path.join(bin, 'pg_dump'), ...liveOut.env }) })
      await waitForFile(path.join(work, 'pid'))
      await settled(partials)
      const [partial] = partials()
      expect(partial).toBeDefined()
      const size = fs.statSync(path.join(dir, partial!)).size

      const second = await runScript(script, { env: env(secondOut.env) })
      expect(second.code, second.output).toBe(0)
      expect(second.output).toContain('skipped: another run of this job holds its lock')
      const dry = await runScript(script, { args: ['--dry-run'], env: env(dryOut.env) })
      expect(dry.code, dry.output).toBe(0)
      expect(dry.output).toContain('dry run: found 1 backup(s) marked running and 1 partial dump(s)')
      expect(partials()).toEqual([partial])
      expect(fs.statSync(path.join(dir, partial!)).size).toBe(size)

      fs.writeFileSync(path.join(work, 'go'), '')
      const result = await live.done
      expect(result.code, result.output).toBe(0)
      expect(partials()).toEqual([])
      const name = partial!.replace(/\.partial$/, '')
      expect(fs.existsSync(path.join(dir, name))).toBe(true)
      const [row] = await db.sql`select status, size_bytes from jobs.backups where file = ${name}`
      expect(row).toEqual({ status: 'verified', size_bytes: String(size) })

      // The workflow encrypts and uploads after the run that dumped, and after neither the skipped nor the dry run.
      const workflow = loadWorkflows().find((w) => w.job === 'backups/database')!
      const steps = allSteps(workflow.doc) as (Step & { id?: string })[]
      const runStep = steps.find((s) => s.run?.includes(script))!
      const encrypt = steps.find((s) => s.uses === './.github/actions/encrypt-artifact')!
      const encrypts = (file: string) =>
        stepRuns(encrypt.if, { steps: { [runStep.id!]: { outputs: readStepOutputs(file) } } })
      expect(readStepOutputs(secondOut.file)).toEqual({})
      expect(JSON.parse(readStepOutputs(liveOut.file).stats!)).toMatchObject({ file: name, sha256: expect.any(String) })
      expect([encrypts(liveOut.file), encrypts(secondOut.file), encrypts(dryOut.file)]).toEqual([true, false, false])
    } finally {
      fs.writeFileSync(path.join(work, 'go'), '')
      // A failed expectation must not leave the live run holding the lock for the next test.
      await live?.done
      fs.rmSync(bin, { recursive: true, force: true })
      fs.rmSync(work, { recursive: true, force: true })
    }
  }, 60_000)
  it('a paused run exits 0, sets no step outputs and so makes the workflow encrypt and upload nothing', async () => {
    await pauseJobs(db.sql, { target: 'backups/database', until: new Date(Date.now() + 3_600_000), reason: 'restore' })
    const output = path.join(dir, '..', `${path.basename(dir)}-paused.output`)
    fs.writeFileSync(output, '')
    try {
      const before = fs.readdirSync(dir).sort()
      const paused = await runScript(script, { env: env({ GITHUB_ACTIONS: 'true', GITHUB_OUTPUT: output }) })
      expect(paused.code, paused.output).toBe(0)
      expect(paused.output).toContain('skipped: paused')
      expect(readStepOutputs(output)).toEqual({})
      const steps = allSteps(loadWorkflows().find((w) => w.job === 'backups/database')!.doc) as (Step & {
        id?: string
      })[]
      const runStep = steps.find((s) => s.run?.includes(script))!
      for (const step of steps.filter((s) => s.if !== undefined))
        expect(stepRuns(step.if, { steps: { [runStep.id!]: { outputs: {} } } }), step.name).toBe(false)
      expect(fs.readdirSync(dir).sort()).toEqual(before)
    } finally {
      await resumeJobs(db.sql, 'backups/database')
      fs.rmSync(output, { force: true })
    }
  })
})
