import { spawnSync } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createLogger, ensureEmbedded } from '@admin-jobs/sdk/platform'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runScript, startScript } from './support/run.ts'

const ok = 'test/fixtures/scripts/test/ok.ts'
const tx = 'test/fixtures/scripts/test/tx.ts'

// One private data dir for the whole file (initdb is the slow part); the tests build on each other in order.
let dataDir: string

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'aj-embedded-'))
  // Running as root, the server runs as `postgres`, which must be able to reach the data dir.
  await fs.chmod(dataDir, 0o755)
})

afterAll(async () => {
  if (!dataDir) return
  if (await serverRunning()) await (await open()).release()
  await fs.rm(dataDir, { recursive: true, force: true })
})

const env = (extra: Record<string, string> = {}) => ({ ADMIN_JOBS_DATA_DIR: dataDir, ...extra })

async function serverRunning(): Promise<boolean> {
  const text = await fs.readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').catch(() => undefined)
  if (!text) return false
  try {
    process.kill(Number(text.split('\n')[0]), 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function open() {
  return ensureEmbedded({ dataDir, log: createLogger({ write: () => {} }) })
}

/** Runs `fn` against the embedded database of this file, then releases it (stopping it when nobody else uses it). */
async function query<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const handle = await open()
  const sql = postgres(handle.url, { max: 1, onnotice: () => {} })
  try {
    return await fn(sql)
  } finally {
    await sql.end({ timeout: 5 })
    await handle.release()
  }
}

describe('the embedded PostgreSQL (no DATABASE_URL)', () => {
  it('initialises, migrates and starts on the first run, and is stopped when the run exits', async () => {
    const result = await runScript(ok, { env: env() })
    expect(result.code, result.output).toBe(0)
    expect(result.stdout).toContain('initialising the embedded PostgreSQL')
    expect(result.stdout).toMatch(/embedded PostgreSQL started port=\d+/)
    expect(result.stdout).toContain('migration applied migration=0001_core.sql')
    expect(result.stdout).toMatch(/succeeded in [\d.]+m?s processed=3/)
    expect(await serverRunning()).toBe(false)
    expect(await fs.readdir(path.join(dataDir, 'pg-clients'))).toEqual([])
  })

  it('reuses the data on the next start: no initdb, no migration, the first run is still in history', async () => {
    const result = await runScript(ok, { env: env() })
    expect(result.code, result.output).toBe(0)
    expect(result.stdout).not.toContain('initialising')
    expect(result.stdout).not.toContain('migration applied')
    expect(result.stdout).toContain('embedded PostgreSQL started')
    expect(await serverRunning()).toBe(false)
    const runs = await query((sql) => sql`select status from jobs.runs where job = 'test/ok' order by id`)
    expect(runs.map((r) => r.status)).toEqual(['succeeded', 'succeeded'])
    expect(await serverRunning()).toBe(false)
  })

  it('recovers from a SIGKILLed run: adopts the orphaned server with a clear message, closes the stale run, stops after', async () => {
    const killed = startScript(tx, { env: env({ FIXTURE_MARK: 'orphan', FIXTURE_WAIT: 'client' }) })
    await killed.waitFor('inserted in open transaction')
    killed.child.kill('SIGKILL')
    await killed.done
    expect(await serverRunning()).toBe(true)

    const next = await runScript(tx, { env: env({ FIXTURE_MARK: 'recovered', FIXTURE_HOLD_MS: '0' }) })
    expect(next.code, next.output).toBe(0)
    expect(next.stderr).toMatch(
      /found an embedded PostgreSQL left running by a run that did not stop it \(killed\?\); reusing it/,
    )
    expect(next.stderr).toContain('closed runs left running by a process that died')
    expect(await serverRunning()).toBe(false)
    const marks = await query((sql) => sql`select mark from public.fixture_marks order by at`)
    expect(marks.map((m) => m.mark)).toEqual(['recovered'])
  })

  it('recovers from a stale postmaster.pid left by a server that died with its machine', async () => {
    expect(await serverRunning()).toBe(false)
    const dead = spawnSync('true').pid
    const pidFile = path.join(dataDir, 'pg', 'postmaster.pid')
    await fs.writeFile(pidFile, `${dead}\n${path.join(dataDir, 'pg')}\n1700000000\n54321\n\n127.0.0.1\n`)
    const result = await runScript(ok, { env: env() })
    expect(result.code, result.output).toBe(0)
    expect(result.stderr).toContain(
      `removing the stale postmaster.pid of an embedded PostgreSQL that was killed pid=${dead}`,
    )
    expect(await serverRunning()).toBe(false)
  })

  it('shares one server between concurrent runs; neither stops it under the other; the last one out stops it', async () => {
    // Both start at once (racing to start the server); the long one then waits inside a transaction until SIGTERM.
    const long = startScript(tx, { env: env({ FIXTURE_MARK: 'long', FIXTURE_WAIT: 'client' }) })
    const short = startScript(ok, { env: env() })
    const shortResult = await short.done
    expect(shortResult.code, shortResult.output).toBe(0)
    await long.waitFor('inserted in open transaction')
    // The short run is over; the long one is still inside its transaction on the same server.
    expect(long.child.exitCode).toBe(null)
    expect(await serverRunning()).toBe(true)
    long.child.kill('SIGTERM')
    const longResult = await long.done
    // Recording `cancelled` needs the server: had the short run stopped it, this would be a runner error (exit 1).
    expect(longResult.code, longResult.output).toBe(143)
    expect(longResult.output).not.toContain('runner error')
    expect(await serverRunning()).toBe(false)
    const [last] = await query(
      (sql) => sql`select status from jobs.runs where job = 'test/tx' order by id desc limit 1`,
    )
    expect(last!.status).toBe('cancelled')
  })
})
