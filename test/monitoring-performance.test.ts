import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runJobScript, runScript } from './support/run.ts'
import { type HttpCapture, startHttp } from './support/servers.ts'

const script = 'scripts/monitoring/performance.ts'
const dayMs = 86_400_000
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms))

let db: TestDatabase
let tmp: string
const closers: (() => Promise<void>)[] = []

beforeAll(async () => {
  db = await createTestDatabase('perf')
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'aj-perf-'))
})

afterAll(async () => {
  for (const close of closers) await close()
  await fs.rm(tmp, { recursive: true, force: true })
})

/** A server whose answers take `latency.ms` (changeable between runs). */
async function serverWithLatency(latency: { ms: number }): Promise<HttpCapture> {
  const server = await startHttp(async (_req, res) => {
    await delay(latency.ms)
    res.end('ok')
  })
  closers.push(server.close)
  return server
}

describe('monitoring/performance', () => {
  it('sees a blocked session as a lock wait, flags a p95 regression against the 7-day baseline, and recovers both', async () => {
    const now = new Date(Date.now() - 60 * 60_000)
    // Margins are wide so a loaded machine's extra latency does not turn b or c into a regression.
    const regressing = { ms: 1500 }
    const steady = { ms: 1500 }
    const fast = { ms: 0 }
    const a = await serverWithLatency(regressing) // baseline 100 ms: 1500 is > 2× and > PERF_REGRESSION_MIN (1 s)
    const b = await serverWithLatency(steady) // baseline 1400 ms: 1500 is < 2×
    const c = await serverWithLatency(fast) // baseline 1 ms: far over 2× but under 1 s
    const seed = async (url: string, p95: number) => {
      for (let day = 1; day <= 6; day++) {
        await db.sql`insert into jobs.metric_samples (sampled_at, metric, subject, value)
                     values (${new Date(now.getTime() - day * dayMs + 3_600_000)}, 'http.p95_ms', ${url}, ${p95})`
      }
      // Older than the 7-day window: must not count.
      await db.sql`insert into jobs.metric_samples (sampled_at, metric, subject, value)
                   values (${new Date(now.getTime() - 8 * dayMs)}, 'http.p95_ms', ${url}, 10000)`
    }
    await seed(a.url, 100)
    await seed(b.url, 1400)
    await seed(c.url, 1)
    // Past the 30-day retention: pruned by the run.
    await db.sql`insert into jobs.metric_samples (sampled_at, metric, value) values (${new Date(now.getTime() - 31 * dayMs)}, 'db.size_bytes', 1)`

    // A real lock held by one connection, a query blocked on it in another.
    await db.sql`create table contested (id int)`
    const holder = await db.sql.reserve()
    await holder`begin`
    await holder`lock table contested in access exclusive mode`
    const waiter = postgres(db.url, { max: 1, onnotice: () => {}, connection: { application_name: 'blocked-reader' } })
    const blocked = waiter`select count(*) from contested`.catch(() => undefined)
    for (let i = 0; i < 100; i++) {
      const [row] =
        await db.sql`select count(*)::int as n from pg_locks where not granted and relation = 'contested'::regclass`
      if (row!.n > 0) break
      await delay(20)
    }
    await delay(1100)

    const summaryFile = path.join(tmp, 'summary.md')
    await fs.writeFile(summaryFile, '')
    const env = (at: Date) => ({
      DATABASE_URL: db.url,
      ADMIN_JOBS_DATA_DIR: tmp,
      ADMIN_JOBS_NOW: at.toISOString(),
      HEALTHCHECK_URLS: [a.url, b.url, c.url].join(','),
      PERF_PROBES: '3',
      PERF_LOCK_WAIT_MAX: '1s',
      PERF_REGRESSION_MIN: '1s',
      PERF_CONNECTIONS_PCT: '100',
      GITHUB_ACTIONS: 'true',
      GITHUB_STEP_SUMMARY: summaryFile,
    })
    let first: Awaited<ReturnType<typeof runScript>>
    try {
      first = await runScript(script, { env: env(now) })
    } finally {
      await holder`rollback`
      holder.release()
      await blocked
      await waiter.end({ timeout: 5 })
    }
    expect(first.code, first.output).toBe(0)

    const sample = async (metric: string, subject = '') => {
      const [row] = await db.sql<{ value: number }[]>`
        select value from jobs.metric_samples where metric = ${metric} and subject = ${subject} and sampled_at = ${now}`
      return row?.value
    }
    expect(await sample('db.lock_waiting')).toBe(1)
    expect(await sample('db.lock_wait_s')).toBeGreaterThanOrEqual(1)
    expect(await sample('db.connections')).toBeGreaterThan(1)
    expect(await sample('db.cache_hit_ratio')).toBeGreaterThan(0)
    expect(await sample('db.size_bytes')).toBeGreaterThan(1_000_000)
    expect(await sample('http.p95_ms', a.url)).toBeGreaterThanOrEqual(1490)
    expect(await sample('http.p50_ms', a.url)).toBeGreaterThanOrEqual(1490)
    expect(await sample('http.errors', a.url)).toBe(0)
    const pruned =
      await db.sql`select 1 from jobs.metric_samples where sampled_at < ${new Date(now.getTime() - 30 * dayMs)}`
    expect(pruned).toHaveLength(0)

    const alerts = async () =>
      (
        await db.sql<{ dedupe_key: string; kind: string; text: string }[]>`
        select incident_key as dedupe_key, kind, text from jobs.messages order by id`
      ).map((r) => `${r.kind} ${r.dedupe_key}`)
    expect(await alerts()).toEqual(['alert perf:lock-wait', `alert perf:regression:${a.url}`])
    const [lockAlert] = await db.sql`select text from jobs.messages where incident_key = 'perf:lock-wait'`
    expect(lockAlert!.text).toMatch(/\n1 session\(s\) waiting on locks, the longest for \d/)
    const summary = await fs.readFile(summaryFile, 'utf8')
    expect(summary).toMatch(/\| Sessions waiting on locks \| 1 \(longest \d/)
    expect(summary).toContain(`| ${a.url} |`)
    expect(summary).toMatch(/100ms ⚠️ regression \|/)

    regressing.ms = 0
    const second = await runScript(script, { env: env(new Date(now.getTime() + 10 * 60_000)) })
    expect(second.code, second.output).toBe(0)
    expect(await alerts()).toEqual([
      'alert perf:lock-wait',
      `alert perf:regression:${a.url}`,
      'recovery perf:lock-wait',
      `recovery perf:regression:${a.url}`,
    ])
    const [run] =
      await db.sql`select stats from jobs.runs where job = 'monitoring/performance' order by id desc limit 1`
    expect(run!.stats).toMatchObject({ lockWaiting: 0, regressions: 0, urls: 3, recoveries: 2 })
  })

  it('lists the tables with the most dead tuples', async () => {
    await db.sql`create table bloated (id int)`
    await db.sql`insert into bloated select generate_series(1, 1000)`
    await db.sql`delete from bloated`
    // Statistics reach the views asynchronously; wait until this database reports them.
    for (let i = 0; i < 100; i++) {
      const [row] = await db.sql`select n_dead_tup::int as n from pg_stat_user_tables where relname = 'bloated'`
      if (row && row.n > 0) break
      await delay(50)
    }
    const result = await runJobScript(script, { env: { DATABASE_URL: db.url, ADMIN_JOBS_DATA_DIR: tmp } })
    expect(result.code, result.output).toBe(0)
    const rows = await db.sql<{ subject: string; value: number }[]>`
      select subject, value from jobs.metric_samples where metric = 'db.dead_tuples' order by sampled_at desc, value desc`
    expect(rows[0]).toEqual({ subject: 'public.bloated', value: 1000 })
  })
})
