import type { BenchDatabase, BenchHelpers } from '../harness.ts'

/** A table the purge benchmarks fill: sessions or tokens, both removable by expires_at or revoked_at (docs/reference.md). */
export type PurgeTable = 'sessions' | 'tokens'

/**
 * Where the removable rows sit in the heap: `scattered` at random over every page, `start` in the first pages (the
 * oldest rows, as a table filled in time order holds them), `end` in the last pages (a recent burst that expired).
 */
export type PurgeLayout = 'scattered' | 'start' | 'end'

/**
 * Fills `table` with `rows` rows of which `share` are removable at `now`, placed by `layout`: a tenth of them revoked
 * 25+ hours ago, the rest expired; some live rows were revoked 23 hours ago. Expiry times are random within each group,
 * so the expiry index is not in heap order.
 */
export async function fillPurgeTable(
  db: BenchDatabase,
  table: PurgeTable,
  rows: number,
  share: number,
  now: Date,
  layout: PurgeLayout = 'scattered',
) {
  const { sql } = db
  const cut = Math.round(share * 100_000)
  const removable =
    layout === 'scattered'
      ? sql`abs(hashint4(g)) % 100000 < ${cut}`
      : layout === 'start'
        ? sql`g <= ${Math.round(share * rows)}`
        : sql`g > ${rows - Math.round(share * rows)}`
  const revoked = sql`abs(hashint4(g + 1)) % 10 = 0`
  const at = sql`${now}::timestamptz`
  const expiresAt = sql`case when ${removable} and not ${revoked}
      then ${at} - interval '1 minute' - (abs(hashint4(g + 7)) % 2000000) * interval '1 second'
      else ${at} + interval '1 minute' + (abs(hashint4(g + 7)) % 2000000) * interval '1 second' end`
  const revokedAt = sql`case when ${removable} and ${revoked} then ${at} - interval '25 hours' - (g % 1000) * interval '1 minute'
      when abs(hashint4(g + 3)) % 50 = 0 then ${at} - interval '23 hours' end`
  if (table === 'sessions') {
    await sql`
      insert into sessions (id, user_id, created_at, last_seen_at, expires_at, revoked_at, ip, user_agent)
      select gen_random_uuid(), 1 + g % 50000, ${at} - interval '40 days' + g * interval '1 second', ${at} - interval '1 day',
        ${expiresAt}, ${revokedAt}, ('10.0.' || (g % 256) || '.' || (g % 200))::inet,
        'Mozilla/5.0 (X11; Linux x86_64) bench/' || (g % 97)
      from generate_series(1, ${rows}::int) g`
  } else {
    await sql`
      insert into tokens (id, user_id, kind, token_hash, created_at, expires_at, revoked_at, used_at)
      select gen_random_uuid(), 1 + g % 50000,
        (array['refresh', 'password_reset', 'email_verification', 'invite'])[1 + g % 4], md5(g::text),
        ${at} - interval '40 days' + g * interval '1 second', ${expiresAt}, ${revokedAt},
        case when g % 7 = 0 then ${at} - interval '2 days' end
      from generate_series(1, ${rows}::int) g`
  }
  await sql`vacuum analyze ${sql(table)}`
}

/** The plain-SQL baseline: one DELETE with the job's own predicate. */
export function singleDelete(db: BenchDatabase, table: PurgeTable, now: Date) {
  const dayAgo = new Date(now.getTime() - 86_400_000)
  return db.sql`delete from ${db.sql(table)} where expires_at < ${now} or revoked_at < ${dayAgo}`
}

/** Rounds of job and baseline a case runs, from `variable` (default 3): each round on fresh copies, order alternating. */
export function roundsFrom(variable: string): number {
  const n = Number(process.env[variable] ?? 3)
  return Number.isInteger(n) && n >= 1 ? n : 3
}

/** Rounds of job and DELETE per purge case (BENCH_PURGE_ROUNDS). */
const rounds = () => roundsFrom('BENCH_PURGE_ROUNDS')

/**
 * One purge case: the data is generated once; each round copies it twice (CREATE DATABASE … TEMPLATE: same rows,
 * same physical layout), runs one DELETE on one copy and the job on the other, both after a checkpoint and a warm
 * read, alternating which goes first. Reports the minimum over the rounds of the job's purge time (its
 * stats.durationMs) and of the DELETE, the job's process wall time, and its longest transaction.
 */
export async function runPurgeCase(
  h: BenchHelpers,
  options: { table: PurgeTable; rows: number; share: number; layout: PurgeLayout; label: string; target: string },
) {
  const { table, rows, share, label, layout } = options
  const now = new Date()
  const source = await h.createDatabase(`${table}_src`)
  h.log(`generating ${rows.toLocaleString('en-US')} ${table}, ${share * 100}% removable, ${layout}`)
  await fillPurgeTable(source, table, rows, share, now, layout)
  const best = { purgeMs: Infinity, deleteMs: Infinity, wallMs: Infinity, longestMs: 0, peakRssMb: 0 }
  let note = ''
  for (let round = 0; round < rounds(); round++) {
    const baselineDb = await h.cloneDatabase(source, `${table}_base`)
    const jobDb = await h.cloneDatabase(source, `${table}_job`)
    const deleteOnce = async () => {
      await h.settle(baselineDb, table)
      return h.time(() => singleDelete(baselineDb, table, now))
    }
    const jobOnce = async () => {
      await h.settle(jobDb, table)
      const run = await h.runJob(`scripts/cleanup/${table}.ts`, {
        db: jobDb,
        // CLEANUP_CONNECTIONS passes through, to compare one connection with the default two.
        env: { ADMIN_JOBS_NOW: now.toISOString(), CLEANUP_CONNECTIONS: process.env.CLEANUP_CONNECTIONS },
      })
      return { run, stats: (await h.lastRun(jobDb, `cleanup/${table}`))?.stats ?? {} }
    }
    const jobFirst = round % 2 === 1
    const first = jobFirst ? await jobOnce() : await deleteOnce()
    const second = jobFirst ? await deleteOnce() : await jobOnce()
    const baseline = (jobFirst ? second : first) as Awaited<ReturnType<typeof deleteOnce>>
    const job = (jobFirst ? first : second) as Awaited<ReturnType<typeof jobOnce>>
    const [left] = await jobDb.sql<{ n: number }[]>`select count(*)::int as n from ${jobDb.sql(table)}`
    const [expected] = await baselineDb.sql<{ n: number }[]>`select count(*)::int as n from ${baselineDb.sql(table)}`
    if (left?.n !== expected?.n) throw new Error(`the job left ${left?.n} ${table}, the DELETE left ${expected?.n}`)
    const { stats } = job
    h.log(
      `round ${round + 1}: job ${stats.durationMs} ms (${stats.strategy}, ${stats.batches} batches, longest ` +
        `${stats.longestTransactionMs} ms${stats.sweptPages === undefined ? '' : `, ${stats.sweptPages} pages swept`}), ` +
        `DELETE ${Math.round(baseline.ms)} ms`,
    )
    if (stats.durationMs < best.purgeMs) {
      note = `${stats.strategy}, ${stats.batches} batches, ${baseline.value.count.toLocaleString('en-US')} rows`
    }
    best.purgeMs = Math.min(best.purgeMs, stats.durationMs)
    best.deleteMs = Math.min(best.deleteMs, baseline.ms)
    best.wallMs = Math.min(best.wallMs, job.run.wallMs)
    best.longestMs = Math.max(best.longestMs, stats.longestTransactionMs)
    best.peakRssMb = Math.max(best.peakRssMb, job.run.peakRssMb)
    await h.dropDatabase(baselineDb)
    await h.dropDatabase(jobDb)
  }
  const runs = `min of ${rounds()}`
  h.report({
    case: label,
    layout,
    metric: 'purge ms',
    job: best.purgeMs,
    baseline: best.deleteMs,
    target: options.target,
    peakRssMb: best.peakRssMb,
    note: `${note}; ${runs}`,
  })
  h.report({
    case: label,
    layout,
    metric: 'process wall ms',
    job: best.wallMs,
    baseline: best.deleteMs,
    note: `incl. node start-up; ${runs}`,
  })
  h.report({
    case: label,
    layout,
    metric: 'longest tx ms',
    job: best.longestMs,
    target: '≤ 250',
    note: 'max of rounds',
  })
}

/**
 * Every layout a purge is measured on, for `table`: 50% removable scattered, 40% at the start of the heap, 25% at the
 * end, 1% scattered. BENCH_PURGE_LAYOUTS (e.g. `end,sparse`) runs only some; BENCH_PURGE_ROWS sets the size (2M).
 */
export async function runPurgeLayouts(h: BenchHelpers, table: PurgeTable) {
  const rows = Number(process.env.BENCH_PURGE_ROWS ?? 2_000_000)
  const size = `${rows / 1_000_000}M`
  const wanted = (process.env.BENCH_PURGE_LAYOUTS ?? 'scattered,start,end,sparse').split(',')
  const cases: { key: string; layout: PurgeLayout; share: number; target: string }[] = [
    { key: 'scattered', layout: 'scattered', share: 0.5, target: '≤ 1.0×' },
    { key: 'start', layout: 'start', share: 0.4, target: '≤ 1.0×' },
    { key: 'end', layout: 'end', share: 0.25, target: '≤ 1.0×' },
    { key: 'sparse', layout: 'scattered', share: 0.01, target: '≤ 1.1×' },
  ]
  for (const c of cases.filter((c) => wanted.includes(c.key))) {
    const label = `${table} ${size}, ${c.share * 100}% removable`
    await runPurgeCase(h, { table, rows, share: c.share, layout: c.layout, label, target: c.target })
  }
}
