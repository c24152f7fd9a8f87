/**
 * The `pnpm bench` harness: a case is one file `bench/cases/<name>.ts` exporting
 *
 *   export default defineBenchCase({
 *     name: 'sessions-1m',                       // defaults to the file name
 *     description: 'cleanup/sessions, 2M rows, 1M removable, vs one DELETE',
 *     async run(h) {
 *       const db = await h.createDatabase('sessions')          // fresh, migrated, dropped after the case
 *       await db.sql`insert into sessions ... from generate_series(1, 2000000)`
 *       const baseline = await h.time(() => db.sql`delete from sessions where expires_at < now()`)
 *       const job = await h.runJob('scripts/cleanup/sessions.ts', { db })   // child process: wall ms + peak RSS
 *       h.report({ metric: 'wall ms', job: job.wallMs, baseline: baseline.ms, target: '≤ 1.0×', peakRssMb: job.peakRssMb })
 *     },
 *   })
 *
 * The database server is BENCH_DATABASE_URL, else TEST_DATABASE_URL, else the embedded PostgreSQL under .data/.
 * A missed target is reported, never an error: `pnpm bench` exits non-zero only when a case throws.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { migrate } from '@admin-jobs/sdk/platform'
import postgres, { type Sql } from 'postgres'

/** The repository root. */
export const root = path.resolve(import.meta.dirname, '..')

/** One row of the results table. `ratio` defaults to job / baseline; `met` is derived from `target` when omitted. */
export interface BenchRow {
  /** What was measured, e.g. `sessions 2M/1M`; defaults to the case name. */
  case?: string
  /** The physical layout of the data the case ran on (e.g. where removable rows sit in the heap), when it matters. */
  layout?: string
  /** The metric and its unit, e.g. `wall ms`, `longest tx ms`, `p99 ms`, `peak RSS MB`. */
  metric: string
  /** The job's (or system under test's) figure. */
  job: number
  /** The baseline's figure (plain SQL, bare node, …), when there is one. */
  baseline?: number
  ratio?: number
  /** `≤ 1.2×` compares the ratio, `≤ 250` compares `job`; anything else is shown as text. */
  target?: string
  met?: boolean
  peakRssMb?: number
  note?: string
}

/** A throwaway database on the bench server. */
export interface BenchDatabase {
  readonly url: string
  /** A small pool on the database (replaced when the database is cloned). */
  readonly sql: Sql
  readonly name: string
}

/** A finished child process with its measurements. */
export interface ChildRun {
  code: number | null
  signal: NodeJS.Signals | null
  wallMs: number
  /** Peak resident set size (VmHWM / maxRSS) in MB. */
  peakRssMb: number
  stdout: string
  stderr: string
  output: string
}

/** Options of runJob / runNode. */
export interface ChildOptions {
  /** Sets DATABASE_URL to this database. */
  db?: BenchDatabase
  args?: string[]
  env?: Record<string, string | undefined>
  /** Echo the child's output lines to the bench's stdout (default false). */
  echo?: boolean
}

/** What a case's `run` receives. */
export interface BenchHelpers {
  /** The server URL databases are created on. */
  readonly serverUrl: string
  /** Creates a fresh database (migrated unless `migrate: false`), dropped when the case ends. */
  createDatabase(label?: string, options?: { migrate?: boolean }): Promise<BenchDatabase>
  /**
   * Copies `source` file by file (CREATE DATABASE … TEMPLATE): identical data and physical layout for a job and its
   * baseline, without generating the data twice. `source` stays usable.
   */
  cloneDatabase(source: BenchDatabase, label?: string): Promise<BenchDatabase>
  /** Drops a database of this case now instead of when the case ends (frees the disk between rounds). */
  dropDatabase(db: BenchDatabase): Promise<void>
  /** Runs CHECKPOINT and reads the whole table once, so job and baseline start from the same WAL and cache state. */
  settle(db: BenchDatabase, table: string): Promise<void>
  /** Runs `node --import tsx <script>` from the repository root with a clean env; throws unless it exits 0 (unless `allowFailure`). */
  runJob(script: string, options?: ChildOptions & { allowFailure?: boolean }): Promise<ChildRun>
  /** Starts a child without waiting, for concurrent measurements; `done` resolves with its measurements. */
  startJob(script: string, options?: ChildOptions): { child: ChildProcess; done: Promise<ChildRun> }
  /** Times an async function (a plain-SQL baseline, usually). */
  time<T>(fn: () => Promise<T> | PromiseLike<T>): Promise<{ ms: number; value: T }>
  /** The latest jobs.runs row of `job` in `db` (its stats carry the job's own figures). */
  lastRun(db: BenchDatabase, job: string): Promise<{ status: string; stats: Record<string, any> } | undefined>
  /** Adds a row to the results table. */
  report(row: BenchRow): void
  /** A progress line on stderr. */
  log(message: string): void
}

/** One benchmark case. */
export interface BenchCase {
  name?: string
  description: string
  run(h: BenchHelpers): Promise<void>
}

/** Declares a benchmark case (a file in bench/cases/ exports it as default). */
export function defineBenchCase(definition: BenchCase): BenchCase {
  return Object.freeze(definition)
}

/** Fills in ratio and met from the row's figures and target. */
export function completeRow(row: BenchRow, caseName: string): Required<Pick<BenchRow, 'case'>> & BenchRow {
  const ratio = row.ratio ?? (row.baseline ? row.job / row.baseline : undefined)
  let met = row.met
  const ratioTarget = /^≤\s*([\d.]+)\s*×$/.exec(row.target ?? '')
  const valueTarget = /^≤\s*([\d.]+)\s*(?:[a-zA-Z%]*)$/.exec(row.target ?? '')
  if (met === undefined && ratioTarget && ratio !== undefined) met = ratio <= Number(ratioTarget[1])
  else if (met === undefined && valueTarget) met = row.job <= Number(valueTarget[1])
  return { ...row, case: row.case ?? caseName, ratio, met }
}

/** The environment of a measured child: PATH/HOME/locale only, plus what the case gives. */
export function childEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    LANG: 'C.UTF-8',
    TZ: 'UTC',
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v
  return env
}

const probe = path.join(root, 'bench/support/rss-probe.mjs')

/** Peak RSS of a live process in kB from /proc (0 where /proc is absent). */
async function readHwmKb(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(status)
  return match ? Number(match[1]) : 0
}

/**
 * Spawns `node --import tsx --import rss-probe <file>`: the probe writes the child's own maxRSS at exit, and /proc
 * VmHWM is sampled meanwhile (covers children that are killed). Wall time runs from spawn to exit.
 */
export function startChild(file: string, options: ChildOptions = {}): { child: ChildProcess; done: Promise<ChildRun> } {
  const rssFile = path.join(tmpdir(), `bench-rss-${process.pid}-${randomBytes(4).toString('hex')}`)
  const env = childEnv({
    ...(options.db ? { DATABASE_URL: options.db.url } : {}),
    ...options.env,
    BENCH_RSS_FILE: rssFile,
  })
  const started = performance.now()
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--import', probe, path.resolve(root, file), ...(options.args ?? [])],
    { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  let output = ''
  let hwmKb = 0
  const sample = setInterval(() => {
    if (child.pid) void readHwmKb(child.pid).then((kb) => (hwmKb = Math.max(hwmKb, kb)))
  }, 100)
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d
    output += d
    if (options.echo) process.stderr.write(d)
  })
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d
    output += d
    if (options.echo) process.stderr.write(d)
  })
  const done = new Promise<ChildRun>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', () => {
      const wallMs = performance.now() - started
      clearInterval(sample)
      child.once('close', async (code, signal) => {
        const probed = Number(await fs.readFile(rssFile, 'utf8').catch(() => '0')) || 0
        await fs.rm(rssFile, { force: true })
        resolve({ code, signal, wallMs, peakRssMb: Math.max(probed, hwmKb) / 1024, stdout, stderr, output })
      })
    })
  })
  return { child, done }
}

/** Builds the helpers one case receives; `cleanup` drops its databases. */
export function createHelpers(
  serverUrl: string,
  caseName: string,
  rows: BenchRow[],
): { helpers: BenchHelpers; cleanup(): Promise<void> } {
  const databases: BenchDatabase[] = []
  const withAdmin = async <T>(fn: (admin: Sql) => Promise<T>): Promise<T> => {
    const admin = postgres(serverUrl, { max: 1, onnotice: () => {} })
    try {
      return await fn(admin)
    } finally {
      await admin.end()
    }
  }
  const databaseName = (label: string) =>
    `bench_${label.replace(/\W/g, '_').slice(0, 30)}_${randomBytes(4).toString('hex')}`.toLowerCase()
  const connectTo = (url: string) => postgres(url, { max: 4, onnotice: () => {}, idle_timeout: 30 })
  const open = (name: string): BenchDatabase => {
    const u = new URL(serverUrl)
    u.pathname = `/${name}`
    const url = u.toString()
    const db = { url, sql: connectTo(url), name }
    databases.push(db)
    return db
  }
  const drop = async (db: BenchDatabase) => {
    await db.sql.end({ timeout: 5 }).catch(() => {})
    await withAdmin((admin) => admin.unsafe(`drop database if exists ${db.name} with (force)`)).catch(() => {})
  }
  const helpers: BenchHelpers = {
    serverUrl,
    async createDatabase(label = caseName, options = {}) {
      const name = databaseName(label)
      await withAdmin((admin) => admin.unsafe(`create database ${name}`))
      const db = open(name)
      if (options.migrate !== false) await migrate(db.sql)
      return db
    },
    async cloneDatabase(source, label = caseName) {
      const name = databaseName(label)
      await source.sql.end({ timeout: 5 })
      // CREATE DATABASE … TEMPLATE needs the source to have no sessions (autovacuum included): retry a few times.
      for (let attempt = 1; ; attempt++) {
        try {
          await withAdmin(async (admin) => {
            await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${source.name}`
            await admin.unsafe(`create database ${name} template ${source.name}`)
          })
          break
        } catch (err) {
          if ((err as { code?: string }).code !== '55006' || attempt >= 10) throw err
          await new Promise((r) => setTimeout(r, 200))
        }
      }
      ;(source as { sql: Sql }).sql = connectTo(source.url)
      return open(name)
    },
    async dropDatabase(db) {
      const i = databases.indexOf(db)
      if (i >= 0) databases.splice(i, 1)
      await drop(db)
    },
    async settle(db, table) {
      await db.sql`checkpoint`
      await db.sql`select count(*) from ${db.sql(table)}`
    },
    async runJob(script, options = {}) {
      const run = await startChild(script, options).done
      if (run.code !== 0 && !options.allowFailure) {
        throw new Error(`${script} exited ${run.code ?? run.signal}:\n${run.output.slice(-4000)}`)
      }
      return run
    },
    startJob: (script, options) => startChild(script, options),
    async time(fn) {
      const started = performance.now()
      const value = await fn()
      return { ms: performance.now() - started, value }
    },
    async lastRun(db, job) {
      const [row] = await db.sql<{ status: string; stats: Record<string, any> }[]>`
        select status, stats from jobs.runs where job = ${job} order by id desc limit 1`
      return row
    },
    report(row) {
      rows.push(completeRow(row, caseName))
    },
    log(message) {
      process.stderr.write(`[${caseName}] ${message}\n`)
    },
  }
  return {
    helpers,
    async cleanup() {
      for (const db of databases.splice(0)) await drop(db)
    },
  }
}
