import { defineBenchCase } from '../harness.ts'

const job = 'notifications/security-alerts'
const script = 'scripts/notifications/security-alerts.ts'

/**
 * notifications/security-alerts on a big audit_logs: 10M rows of history (BENCH_AUDIT_ROWS), a watermark at the top,
 * then 1,000 new events (logins, failures with one brute-force burst, an admin on a new IP, exports). One run must
 * cost ≤ 100 ms of database time: its work follows the new events (id range scan, per-subject index probes), not the table.
 */
export default defineBenchCase({
  description: 'notifications/security-alerts: 1,000 new events on a 10M-row audit_logs, database time of one run',
  async run(h) {
    const rows = Number(process.env.BENCH_AUDIT_ROWS ?? 10_000_000)
    const db = await h.createDatabase('security')
    const { sql } = db
    const now = new Date()
    await sql`
      insert into users (id, email, role)
      select g, 'user' || g || '@example.com', case when g <= 50 then 'admin' else 'user' end
      from generate_series(1, 10000) g`

    // Load without the secondary indexes, then rebuild them from their own definitions (a bulk build is much faster).
    const indexes = await sql<{ name: string; def: string }[]>`
      select indexname as name, indexdef as def from pg_indexes
      where schemaname = 'public' and tablename = 'audit_logs' and indexname <> 'audit_logs_pkey'`
    for (const i of indexes) await sql`drop index ${sql(i.name)}`
    h.log(`loading ${rows.toLocaleString('en-US')} audit_logs rows`)
    await sql`
      insert into audit_logs (occurred_at, actor_id, action, target_type, target_id, ip, metadata)
      select ${now}::timestamptz - interval '90 days' + (g::float8 / ${rows}) * interval '90 days' - interval '1 hour',
        case when a < 85 then 1 + abs(hashint4(g + 1)) % 10000 end,
        case when a < 60 then 'auth.login' when a < 75 then 'auth.logout' when a < 85 then 'data.export'
             else 'auth.login_failed' end,
        'user', (1 + abs(hashint4(g + 2)) % 10000)::text,
        '10.0.0.0'::inet + abs(hashint4(g + 3)) % 65536,
        case when a >= 85 then jsonb_build_object('email', 'user' || (1 + abs(hashint4(g + 4)) % 10000) || '@example.com')
             when a >= 75 then jsonb_build_object('rows', abs(hashint4(g + 5)) % 5000)
             else '{}'::jsonb end
      from (select g, abs(hashint4(g)) % 100 as a from generate_series(1, ${rows}::int) g) s`
    h.log('building indexes')
    for (const i of indexes) await sql.unsafe(i.def)
    await sql`vacuum analyze audit_logs`
    const [top] = await sql<{ max: string }[]>`select max(id)::text as max from audit_logs`
    await sql`
      insert into jobs.job_state (job, key, value)
      values (${job}, 'watermark', ${sql.json({ lastId: top!.max, gaps: [] })})`

    await sql`checkpoint`
    await sql`select count(*) from audit_logs where id > ${top!.max}`

    // Buffers the run touched in audit_logs (heap + indexes), from pg_statio once the child's sessions ended: a
    // load-independent measure that the work follows the new events, not the table.
    const blocks = async () => {
      await sql`select pg_stat_clear_snapshot()`
      const [row] = await sql<{ n: number }[]>`
        select (coalesce(heap_blks_read, 0) + coalesce(heap_blks_hit, 0) + coalesce(idx_blks_read, 0)
                + coalesce(idx_blks_hit, 0))::float8 as n
        from pg_statio_user_tables where relname = 'audit_logs'`
      return row!.n
    }
    // Milliseconds the database's sessions spent executing statements (pg_stat_database.active_time, PostgreSQL 14+):
    // the database time itself, with the round trips and client-side parsing left out.
    const activeMs = async () => {
      await sql`select pg_stat_clear_snapshot()`
      const [row] = await sql<{ ms: number | null }[]>`
        select active_time::float8 as ms from pg_stat_database where datname = current_database()`
      return row?.ms ?? Number.NaN
    }
    const measure = async () => {
      // This connection's own statistics (the 1,000 inserts) must land before the window opens, not inside it.
      await new Promise((r) => setTimeout(r, 1100))
      await sql`select pg_stat_force_next_flush()`
      await sql`select 1`
      const before = await blocks()
      const activeBefore = await activeMs()
      const run = await h.runJob(script, { db })
      await new Promise((r) => setTimeout(r, 1500))
      const active = (await activeMs()) - activeBefore
      return { run, active, blocks: (await blocks()) - before, stats: (await h.lastRun(db, job))?.stats ?? {} }
    }
    // Baseline: a run with no new events costs the runner's fixed work and the job's empty scan.
    const idle = await measure()
    // 1,000 new events over the last 15 minutes.
    await sql`
      insert into audit_logs (occurred_at, actor_id, action, target_type, target_id, ip, metadata)
      select ${now}::timestamptz - interval '15 minutes' + g * interval '0.9 second',
        case when g % 4 <> 3 then 1 + abs(hashint4(g + 11)) % 10000 end,
        case when g % 4 = 3 then 'auth.login_failed' when g % 4 = 2 then 'data.export' else 'auth.login' end,
        'user', (1 + abs(hashint4(g + 12)) % 10000)::text,
        case when g % 4 = 3 and g % 40 = 3 then '192.0.2.1'::inet else '10.0.0.0'::inet + abs(hashint4(g + 13)) % 65536 end,
        case when g % 4 = 3 then jsonb_build_object('email', 'user' || (1 + abs(hashint4(g + 14)) % 10000) || '@example.com')
             when g % 4 = 2 then jsonb_build_object('rows', case when g = 2 then 50000 else 100 end)
             else '{}'::jsonb end
      from generate_series(1, 1000) g`
    await sql`checkpoint`
    const busy = await measure()
    const [size] = await sql<{ pages: number }[]>`
      select (pg_relation_size('audit_logs') / current_setting('block_size')::int)::float8 as pages`
    const c = 'security-alerts 10M/1k'
    h.report({
      case: c,
      metric: 'database active ms',
      job: Math.round(busy.active * 10) / 10,
      baseline: Math.round(idle.active * 10) / 10,
      target: '≤ 100',
      note: 'pg_stat_database.active_time over the whole run (runner bookkeeping included); baseline: the idle run',
    })
    h.report({
      case: c,
      metric: 'job query ms',
      job: busy.stats.ms ?? Number.NaN,
      baseline: idle.stats.ms,
      note: `client wall of the job's queries (upper bound of db time): scan ${busy.stats.scanMs}, rules ${busy.stats.rulesMs}, alerts ${busy.stats.alertsMs}; ${busy.stats.events} events, ${busy.stats.alerted} alerts`,
    })
    h.report({
      case: c,
      metric: 'audit_logs blocks touched',
      job: busy.blocks,
      baseline: idle.blocks,
      note: `table heap ${Math.round(size!.pages).toLocaleString('en-US')} blocks`,
    })
    h.report({
      case: c,
      metric: 'wall ms',
      job: busy.run.wallMs,
      baseline: idle.run.wallMs,
      peakRssMb: busy.run.peakRssMb,
    })
  },
})
