import { percentile } from '@admin-jobs/sdk/platform'
import type { Sql } from 'postgres'
import { defineBenchCase } from '../harness.ts'
import { fillPurgeTable, singleDelete } from '../support/purge-case.ts'

/**
 * Live traffic while sessions are purged: two writers each loop single-row statements as an admin server makes them
 * (insert a session; touch a live session by its primary key, as a request carrying that session does) and record
 * their latency. Compared: during cleanup/sessions vs during one big DELETE.
 */
async function writers(sql: Sql, now: Date, until: () => boolean): Promise<number[]> {
  // Live sessions spread over the whole heap, read before the clock starts.
  const live = (
    await sql<{ id: string }[]>`
      select id from sessions tablesample system (1) where expires_at > ${now} and revoked_at is null limit 5000`
  ).map((r) => r.id)
  if (live.length === 0) throw new Error('no live sessions to touch')
  const latencies: number[] = []
  const loop = async (n: number) => {
    for (let i = 0; !until(); i++) {
      const t0 = performance.now()
      if (i % 2 === 0) {
        await sql`insert into sessions (user_id, expires_at) values (${n}, ${now}::timestamptz + interval '1 day')`
      } else {
        await sql`update sessions set last_seen_at = now() where id = ${live[(i * 7919 + n) % live.length]!}`
      }
      latencies.push(performance.now() - t0)
    }
  }
  await Promise.all([loop(1), loop(2)])
  return latencies
}

export default defineBenchCase({
  description: 'p99 latency of single-row inserts/updates from two writers during the sessions purge (2M/1M)',
  async run(h) {
    const now = new Date()
    const rows = Number(process.env.BENCH_PURGE_ROWS ?? 2_000_000)
    const source = await h.createDatabase('concurrent_src')
    h.log(`generating ${rows.toLocaleString('en-US')} sessions`)
    await fillPurgeTable(source, 'sessions', rows, 0.5, now)
    const baseDb = await h.cloneDatabase(source, 'concurrent_base')

    await h.settle(baseDb, 'sessions')
    let deleting = true
    const baseLatencies = writers(baseDb.sql, now, () => !deleting)
    await new Promise((r) => setTimeout(r, 200))
    await singleDelete(baseDb, 'sessions', now)
    deleting = false
    const base = await baseLatencies

    await h.settle(source, 'sessions')
    const job = h.startJob('scripts/cleanup/sessions.ts', {
      db: source,
      env: { ADMIN_JOBS_NOW: now.toISOString(), CLEANUP_CONNECTIONS: process.env.CLEANUP_CONNECTIONS },
    })
    let running = true
    void job.done.then(() => (running = false))
    const during = writers(source.sql, now, () => !running)
    const run = await job.done
    if (run.code !== 0) throw new Error(`cleanup/sessions exited ${run.code}:\n${run.output.slice(-2000)}`)
    const latencies = await during
    h.report({
      case: 'writers during purge',
      layout: 'scattered',
      metric: 'p99 ms',
      job: percentile(latencies, 99) ?? 0,
      baseline: percentile(base, 99),
      // Unchanged: no worse than during one DELETE on the same data.
      target: '≤ 1.0×',
      note: `CLEANUP_CONNECTIONS=${process.env.CLEANUP_CONNECTIONS ?? 2}; ${latencies.length} statements (baseline: during one DELETE, ${base.length})`,
    })
    h.report({
      case: 'writers during purge',
      layout: 'scattered',
      metric: 'max ms',
      job: Math.max(...latencies),
      baseline: Math.max(...base),
    })
  },
})
