import { type Check, type Decision, defineJob, formatMs, percentile } from '@admin-jobs/sdk'
import type { Sql } from 'postgres'
import { probeUrl } from './lib/index.ts'

const dayMs = 86_400_000

/** One sample row: metric, subject (URL, table, replica or ''), value. */
type Sample = [metric: string, subject: string, value: number]

export default defineJob({
  description:
    'Sample database and HTTP performance; alert on thresholds and on regressions against the 7-day baseline',
  timeout: '8m',
  retry: false,
  settings: (read) => ({
    probes: read.integer('PERF_PROBES', 5, { min: 1, max: 50 }),
    timeoutMs: read.duration('PERF_TIMEOUT', '10s'),
    connectionsPct: read.number('PERF_CONNECTIONS_PCT', 80, { min: 1, max: 100 }),
    queryMaxMs: read.duration('PERF_QUERY_MAX', '5m'),
    lockWaitMaxMs: read.duration('PERF_LOCK_WAIT_MAX', '1m'),
    regressionFactor: read.number('PERF_REGRESSION_FACTOR', 2, { min: 1 }),
    regressionMinMs: read.duration('PERF_REGRESSION_MIN', '500ms'),
    baselineMinSamples: read.integer('PERF_BASELINE_MIN_SAMPLES', 3, { min: 1 }),
    retentionDays: read.integer('MONITORING_RETENTION_DAYS', 30, { min: 1, max: 3650 }),
  }),
  async run({ sql, log, config, settings, dryRun, signal, summary, now: clock, run, ...ctx }) {
    const now = clock()

    const [db, http] = await Promise.all([
      readDatabaseMetrics(sql),
      Promise.all(config.healthcheckUrls.map((url) => probeSeries(url, settings.probes, settings.timeoutMs, signal))),
    ])
    // A stopped run's aborted probes are not measurements: record and judge nothing.
    signal.throwIfAborted()

    const samples: Sample[] = [
      ['db.connections', '', db.connections],
      ['db.connections_pct', '', db.connectionsPct],
      ['db.oldest_query_s', '', db.oldestQueryS],
      ['db.oldest_xact_s', '', db.oldestXactS],
      ['db.lock_waiting', '', db.lockWaiting],
      ['db.lock_wait_s', '', db.lockWaitS],
      ['db.size_bytes', '', db.sizeBytes],
      ...(db.cacheHitRatio === null ? [] : [['db.cache_hit_ratio', '', db.cacheHitRatio] as Sample]),
      ...db.deadTuples.map((t): Sample => ['db.dead_tuples', t.table, t.dead]),
      ...db.replicas.map((r): Sample => ['db.replication_lag_s', r.name, r.lagS]),
    ]
    for (const h of http) {
      if (h.p50 !== undefined) samples.push(['http.p50_ms', h.target, h.p50], ['http.p95_ms', h.target, h.p95!])
      if (h.max !== undefined) samples.push(['http.max_ms', h.target, h.max])
      samples.push(['http.errors', h.target, h.errors])
    }

    const growth = await sizeGrowthPerDay(sql, now, db.sizeBytes)
    const baselines = await Promise.all(http.map((h) => baselineP95(sql, h.target, now, settings.baselineMinSamples)))

    const decisions: Decision[] = []
    // Thresholds describe conditions that already lasted (a query > 5 min, a wait > 1 min): alert on the first sample.
    const observe = async (check: Check) => {
      decisions.push(await ctx.observe({ failuresToAlert: 1, remindEvery: '1h', ...check, at: now }))
    }
    await observe({
      key: 'perf:connections',
      ok: db.connectionsPct <= settings.connectionsPct,
      title: `Database connections above ${settings.connectionsPct}%`,
      error: `${db.connections} of ${db.maxConnections} connections in use (${db.connectionsPct.toFixed(1)}%).`,
      severity: 'warning',
    })
    await observe({
      key: 'perf:long-query',
      ok: db.oldestQueryS * 1000 <= settings.queryMaxMs,
      title: `A query has been running for more than ${formatMs(settings.queryMaxMs)}`,
      error: `The oldest running query started ${formatMs(db.oldestQueryS * 1000)} ago.`,
      severity: 'warning',
    })
    await observe({
      key: 'perf:lock-wait',
      ok: db.lockWaitS * 1000 <= settings.lockWaitMaxMs,
      title: `Sessions waiting on locks for more than ${formatMs(settings.lockWaitMaxMs)}`,
      error: `${db.lockWaiting} session(s) waiting on locks, the longest for ${formatMs(db.lockWaitS * 1000)}.`,
      fields: { blockers: db.blockers.join(', ') || undefined },
      severity: 'warning',
    })
    const regressions: string[] = []
    for (const [i, h] of http.entries()) {
      const baseline = baselines[i]
      if (h.p95 === undefined || baseline === undefined) continue
      const regressed = h.p95 > settings.regressionFactor * baseline && h.p95 > settings.regressionMinMs
      if (regressed) regressions.push(h.target)
      await observe({
        key: `perf:regression:${h.target}`,
        ok: !regressed,
        title: `${h.target} is slower than its 7-day baseline`,
        error: `p95 ${formatMs(h.p95)} against a 7-day baseline of ${formatMs(baseline)} (more than ${settings.regressionFactor}×).`,
        severity: 'warning',
      })
    }

    if (!dryRun) {
      await sql.begin(async (tx) => {
        for (const [metric, subject, value] of samples) {
          await tx`
            insert into jobs.metric_samples (sampled_at, metric, subject, value, run_id)
            values (${now}, ${metric}, ${subject}, ${value}, ${run.id})`
        }
        await tx`delete from jobs.metric_samples where sampled_at < ${new Date(now.getTime() - settings.retentionDays * dayMs)}`
      })
    }

    summary.table([
      ['Database metric', 'Value'],
      ['Connections', `${db.connections} / ${db.maxConnections} (${db.connectionsPct.toFixed(1)}%)`],
      ['Oldest running query', formatMs(db.oldestQueryS * 1000)],
      ['Oldest open transaction', formatMs(db.oldestXactS * 1000)],
      ['Sessions waiting on locks', `${db.lockWaiting} (longest ${formatMs(db.lockWaitS * 1000)})`],
      ['Cache hit ratio', db.cacheHitRatio === null ? 'n/a' : `${(db.cacheHitRatio * 100).toFixed(2)}%`],
      ['Database size', `${mb(db.sizeBytes)}${growth === undefined ? '' : ` (${mb(growth)}/day)`}`],
      ['Most dead tuples', db.deadTuples.map((t) => `${t.table} ${t.dead}`).join(', ') || 'none'],
      ['Replication lag', db.replicas.map((r) => `${r.name} ${formatMs(r.lagS * 1000)}`).join(', ') || 'no replicas'],
    ])
    if (http.length) {
      summary.table([
        ['URL', 'p50', 'p95', 'max', 'errors', '7-day p95 baseline'],
        ...http.map((h, i) => [
          h.target,
          fmt(h.p50),
          fmt(h.p95),
          fmt(h.max),
          `${h.errors}/${settings.probes}`,
          `${fmt(baselines[i])}${regressions.includes(h.target) ? ' ⚠️ regression' : ''}`,
        ]),
      ])
    }

    const alerts = decisions.filter((d) => d.action === 'alert' || d.action === 'reminder').map((d) => d.key)
    if (alerts.length) log.warn('performance thresholds exceeded', { keys: alerts.join(',') })
    return {
      connectionsPct: Math.round(db.connectionsPct * 10) / 10,
      lockWaiting: db.lockWaiting,
      oldestQueryS: Math.round(db.oldestQueryS),
      sizeBytes: db.sizeBytes,
      urls: http.length,
      regressions: regressions.length,
      alerts: alerts.length,
      recoveries: decisions.filter((d) => d.action === 'recovery').length,
      samples: samples.length,
    }
  },
})

const fmt = (ms: number | undefined) => (ms === undefined ? 'n/a' : formatMs(ms))
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`

interface DatabaseMetrics {
  connections: number
  maxConnections: number
  connectionsPct: number
  oldestQueryS: number
  oldestXactS: number
  lockWaiting: number
  lockWaitS: number
  blockers: string[]
  cacheHitRatio: number | null
  sizeBytes: number
  deadTuples: { table: string; dead: number }[]
  replicas: { name: string; lagS: number }[]
}

/** Reads the database's health from the statistics views; activity and locks are scoped to this database. */
async function readDatabaseMetrics(sql: Sql): Promise<DatabaseMetrics> {
  const [activity] = await sql<
    {
      connections: number
      max_connections: number
      oldest_query_s: number | null
      oldest_xact_s: number | null
      hit: string | null
      read: string | null
      size: string
    }[]
  >`
    select
      (select count(*) from pg_stat_activity where backend_type = 'client backend')::int as connections,
      current_setting('max_connections')::int as max_connections,
      (select extract(epoch from max(now() - query_start)) from pg_stat_activity
        where state = 'active' and backend_type = 'client backend' and datname = current_database()
          and pid <> pg_backend_pid())::float8 as oldest_query_s,
      (select extract(epoch from max(now() - xact_start)) from pg_stat_activity
        where xact_start is not null and backend_type = 'client backend' and datname = current_database()
          and pid <> pg_backend_pid())::float8 as oldest_xact_s,
      (select blks_hit from pg_stat_database where datname = current_database()) as hit,
      (select blks_read from pg_stat_database where datname = current_database()) as read,
      pg_database_size(current_database()) as size`
  const waits = await sql<
    { pid: number; wait_s: number; blocked_by: number[]; mode: string; relation: string | null }[]
  >`
    select l.pid, extract(epoch from now() - coalesce(l.waitstart, a.query_start))::float8 as wait_s,
           pg_blocking_pids(l.pid) as blocked_by, l.mode, l.relation::regclass::text as relation
    from pg_locks l join pg_stat_activity a on a.pid = l.pid
    where not l.granted and a.datname = current_database()`
  const dead = await sql<{ table: string; dead: string }[]>`
    select schemaname || '.' || relname as table, n_dead_tup as dead from pg_stat_user_tables
    where n_dead_tup > 0 order by n_dead_tup desc limit 5`
  const replicas = await sql<{ name: string; lag_s: number | null }[]>`
    select coalesce(nullif(application_name, ''), client_addr::text, pid::text) as name,
           coalesce(extract(epoch from replay_lag), 0)::float8 as lag_s
    from pg_stat_replication
    union all
    select 'this standby', extract(epoch from now() - pg_last_xact_replay_timestamp())::float8
    where pg_is_in_recovery()`
  const hit = Number(activity!.hit ?? 0)
  const read = Number(activity!.read ?? 0)
  const waitingPids = new Set(waits.map((w) => w.pid))
  return {
    connections: activity!.connections,
    maxConnections: activity!.max_connections,
    connectionsPct: (activity!.connections / activity!.max_connections) * 100,
    oldestQueryS: activity!.oldest_query_s ?? 0,
    oldestXactS: activity!.oldest_xact_s ?? 0,
    lockWaiting: waitingPids.size,
    lockWaitS: Math.max(0, ...waits.map((w) => w.wait_s)),
    blockers: waits.map(
      (w) =>
        `pid ${w.pid} waits for ${w.mode}${w.relation ? ` on ${w.relation}` : ''} held by ${w.blocked_by.join('/')}`,
    ),
    cacheHitRatio: hit + read > 0 ? hit / (hit + read) : null,
    sizeBytes: Number(activity!.size),
    deadTuples: dead.map((d) => ({ table: d.table, dead: Number(d.dead) })),
    replicas: replicas.map((r) => ({ name: r.name, lagS: r.lag_s ?? 0 })),
  }
}

/** Probes one URL `count` times in a row (URLs run side by side); percentiles over the answered probes. */
async function probeSeries(url: string, count: number, timeoutMs: number, signal: AbortSignal) {
  const latencies: number[] = []
  let errors = 0
  let target = url
  for (let i = 0; i < count && !signal.aborted; i++) {
    const result = await probeUrl(url, { timeoutMs, signal })
    target = result.target
    if (result.ok) latencies.push(result.latencyMs)
    else errors++
  }
  return {
    target,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    max: latencies.length ? Math.max(...latencies) : undefined,
    errors,
  }
}

/** The median of the stored p95 samples of the 7 days before `now`; undefined with fewer than `minSamples`. */
async function baselineP95(sql: Sql, target: string, now: Date, minSamples: number): Promise<number | undefined> {
  const [row] = await sql<{ n: number; median: number | null }[]>`
    select count(*)::int as n, percentile_cont(0.5) within group (order by value) as median
    from jobs.metric_samples
    where metric = 'http.p95_ms' and subject = ${target}
      and sampled_at >= ${new Date(now.getTime() - 7 * dayMs)} and sampled_at < ${now}`
  return row && row.n >= minSamples && row.median !== null ? row.median : undefined
}

/** Growth of the database per day since the oldest size sample of the last 24 hours (at least one hour back). */
async function sizeGrowthPerDay(sql: Sql, now: Date, sizeBytes: number): Promise<number | undefined> {
  const [row] = await sql<{ sampled_at: Date; value: number }[]>`
    select sampled_at, value from jobs.metric_samples
    where metric = 'db.size_bytes' and sampled_at >= ${new Date(now.getTime() - dayMs)}
      and sampled_at <= ${new Date(now.getTime() - 3_600_000)}
    order by sampled_at limit 1`
  if (!row) return undefined
  return ((sizeBytes - row.value) / (now.getTime() - row.sampled_at.getTime())) * dayMs
}
