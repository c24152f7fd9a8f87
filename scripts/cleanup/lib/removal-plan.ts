import { ConfigError, type EnvReader, NonRetryableError } from '@admin-jobs/sdk'
import type { PendingQuery, Row, Sql } from 'postgres'

/** One reason a row is removable: its `column` is before `before` (e.g. `expires_at` before now). */
export interface RemovalRange {
  readonly column: string
  readonly before: Date
}

/** How much of a table a run would remove; `exact` when counted, otherwise planner estimates. */
export interface RemovalEstimate {
  total: number
  removable: number
  fraction: number
  exact: boolean
}

/** `col1 < $1 or col2 < $2 …`: the rows any range makes removable. */
export function removableWhere(sql: Sql, ranges: readonly RemovalRange[]): PendingQuery<Row[]> {
  if (ranges.length === 0) throw new TypeError('removableWhere needs at least one range')
  return ranges.map((r) => sql`${sql(r.column)} < ${r.before}`).reduce((acc, part) => sql`${acc} or ${part}`)
}

/**
 * Parses a share of a table: `0.6`, `60%`; must lie in (0, 1]. `name` is the variable or flag named in the error
 * (a ConfigError, so a bad value is exit 2).
 */
export function parseFraction(text: string, name: string): number {
  const trimmed = text.trim()
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(trimmed)
  const value = percent ? Number(percent[1]) / 100 : /^\d*\.?\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN
  if (!Number.isFinite(value) || value <= 0 || value > 1) {
    throw new ConfigError(`${name} must be a share of the table between 0 and 1, e.g. 0.6 or 60% (got "${text}")`, {
      variable: name,
    })
  }
  return value
}

/** Margin below the limit within which planner estimates are not trusted and rows are counted exactly. */
const exactMargin = 0.15

/**
 * Estimates the removable share of `table` from planner statistics (a few ms, no scan), and counts exactly when the
 * statistics are missing or stale (over 20% of rows modified since ANALYZE) or the estimate comes within 15 points
 * of `maxFraction` — so the safety rail never rests on a guess near its limit.
 */
export async function estimateRemoval(
  sql: Sql,
  options: { table: string; where: PendingQuery<Row[]>; maxFraction: number },
): Promise<RemovalEstimate> {
  const table = sql(options.table)
  // Both at once, in one round trip (the plan is not used when the statistics turn out stale).
  const [[stats], [plan]] = await Promise.all([
    sql<{ reltuples: number; modified: number | null }[]>`
      select c.reltuples::float8 as reltuples, s.n_mod_since_analyze::float8 as modified
      from pg_class c left join pg_stat_user_tables s on s.relid = c.oid
      where c.oid = ${`public.${options.table}`}::regclass`,
    sql<{ 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }[]>`
      explain (format json) select 1 from ${table} where ${options.where}`,
  ])
  const reltuples = stats?.reltuples ?? -1
  const stale = reltuples <= 0 || (stats?.modified ?? 0) > 0.2 * reltuples
  // Without a limit there is nothing to guard, so fresh statistics are good enough near 100% too.
  const limited = options.maxFraction < 1
  if (!stale) {
    const removable = Math.min(reltuples, plan?.['QUERY PLAN'][0].Plan['Plan Rows'] ?? reltuples)
    const fraction = removable / reltuples
    if (!limited || fraction < options.maxFraction - exactMargin)
      return { total: reltuples, removable, fraction, exact: false }
  }
  const [row] = await sql<{ total: number; removable: number }[]>`
    select count(*)::float8 as total, count(*) filter (where ${options.where})::float8 as removable from ${table}`
  const total = row?.total ?? 0
  const removable = row?.removable ?? 0
  return { total, removable, fraction: total === 0 ? 0 : removable / total, exact: true }
}

/** Where removable rows sit: the share of sampled heap pages that hold at least one, and the first such page. */
export interface RemovalLayout {
  sampledPages: number
  pageShare: number
  /** The first and the last sampled page holding a removable row (null when none did). */
  firstPage: number | null
  lastPage: number | null
  /** Heap pages in all (from the relation's size on disk). */
  pages: number
}

/**
 * Samples `pages` heap pages (default 400) and reports the share of them holding a removable row: one page in each of
 * that many equal stretches of the heap, at a fixed pseudo-random offset within it, each read by a TID range scan that
 * stops at its first removable row (a few ms, whatever the table's size). High when removable rows are spread over the
 * heap, low when they are gathered at its start or end or are few. Pages without a visible row count as holding none.
 */
export async function sampleLayout(
  sql: Sql,
  options: { table: string; where: PendingQuery<Row[]>; pages?: number },
): Promise<RemovalLayout> {
  // The sample's page numbers follow from the relation's size, read in the same statement.
  const wanted = Math.max(1, options.pages ?? 400)
  const [sample] = await sql<
    { pages: number; n: number; covered: number; first: number | null; last: number | null }[]
  >`
    with size as (
      select greatest(1, pg_relation_size(${`public.${options.table}`}::regclass)
        / current_setting('block_size')::int)::int as pages),
    sampled as (
      select least(size.pages - 1, floor((i + (((i + 1) * 7919) % 1000) / 1000.0)
        * (size.pages::float8 / least(size.pages, ${wanted}::int))))::int as p
      from size, generate_series(0, least(size.pages, ${wanted}::int) - 1) i)
    select (select pages from size) as pages, count(*)::int as n, count(*) filter (where removable)::int as covered,
      min(p) filter (where removable) as first, max(p) filter (where removable) as last
    from sampled
    cross join lateral (
      select exists (
        select 1 from ${sql(options.table)}
        where ctid >= format('(%s,0)', p)::tid and ctid < format('(%s,0)', p + 1)::tid and (${options.where})
      ) as removable) page`
  const pages = sample?.pages ?? 1
  const n = Math.max(1, sample?.n ?? 1)
  return {
    sampledPages: n,
    pageShare: (sample?.covered ?? 0) / n,
    firstPage: sample?.first ?? null,
    lastPage: sample?.last ?? null,
    pages,
  }
}

/**
 * Counts exactly the rows any range makes removable, as disjoint parts: the rows of the first range (an index-only
 * scan of its index: no heap page read where the visibility map allows), then those of each further range that no
 * earlier range matched (its own index, then the heap for the other columns; those rows are few). Cheaper than
 * counting `where a or b`, which reads every page the removable rows are on.
 */
export async function countRemovable(sql: Sql, table: string, ranges: readonly RemovalRange[]): Promise<number> {
  let total = 0
  for (const [k, r] of ranges.entries()) {
    const earlier = ranges.slice(0, k).map((e) => sql`and not coalesce(${sql(e.column)} < ${e.before}, false)`)
    const [row] = await sql<{ n: number }[]>`
      select count(*)::float8 as n from ${sql(table)}
      where ${sql(r.column)} < ${r.before} ${earlier.reduce((acc, part) => sql`${acc} ${part}`, sql``)}`
    total += row?.n ?? 0
  }
  return total
}

/**
 * The optional share limit: throws a NonRetryableError (exit 1) when the run would remove more than `maxFraction` of
 * the table, naming the flag and variable that allow it. The clock check (clock.ts) is what guards against a clock
 * mistake; this is for operators who want a cap as well.
 */
export function assertWithinLimit(
  estimate: RemovalEstimate,
  options: { table: string; maxFraction: number; variable: string; verb?: string },
): void {
  if (options.maxFraction >= 1 || estimate.fraction <= options.maxFraction) return
  const pct = (f: number) => `${(f * 100).toFixed(1).replace(/\.0$/, '')}%`
  const n = (v: number) => Math.round(v).toLocaleString('en-US')
  throw new NonRetryableError(
    `safety rail: refusing to ${options.verb ?? 'delete'} ${n(estimate.removable)} of ${n(estimate.total)} rows of ` +
      `${options.table} (${pct(estimate.fraction)}${estimate.exact ? '' : ', estimated'}), more than the limit of ` +
      `${pct(options.maxFraction)}. If this is intended, run again with ` +
      `--max-fraction ${Math.min(1, Math.ceil(estimate.fraction * 100 + 1) / 100)} or set ${options.variable}.`,
  )
}

/** The `--max-fraction` flag of a cleanup job; `verb` says what the job does to rows (delete, archive). */
export function maxFractionFlag(verb: 'delete' | 'archive') {
  return {
    type: 'string',
    value: 'share',
    description: `optional limit: refuse to ${verb} more than this share of the table (0.99 or 99%; default: no limit)`,
  } as const
}

/** The safety-rail limit of a job: `--max-fraction`, else the variable `variable`, else `fallback`. */
export function readMaxFraction(
  read: { string(name: string, fallback: string): string },
  flags: Readonly<Record<string, string | boolean | undefined>>,
  variable: string,
  fallback: number,
): number {
  const flag = flags['max-fraction']
  if (typeof flag === 'string') return parseFraction(flag, '--max-fraction')
  // Read with its default, so `--help` shows it.
  return parseFraction(read.string(variable, String(fallback)), variable)
}

/**
 * CLEANUP_CONNECTIONS (default 2, 1–4): how many connections run a cleanup job's batches at once, within the job's pool
 * of 5. More finish sooner on a database server with cores to spare; all but the first wait while other sessions are
 * working on the database (see onEachConnection), and 1 keeps to one connection whatever the traffic.
 */
export function readConnections(read: Pick<EnvReader, 'integer'>): number {
  return read.integer('CLEANUP_CONNECTIONS', 2, { min: 1, max: 4 })
}
