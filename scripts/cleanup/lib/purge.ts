import type { Logger } from '@admin-jobs/sdk'
import type { PendingQuery, ReservedSql, Row, Sql } from 'postgres'
import {
  type BatchOptions,
  type BatchStatement,
  type BatchTotals,
  batchSession,
  type Reserving,
  reserveConnections,
} from './batches.ts'
import { sweepHeap } from './heap-sweep.ts'
import { walkKeyRanges } from './key-ranges.ts'
import {
  assertWithinLimit,
  countRemovable,
  estimateRemoval,
  type RemovalLayout,
  type RemovalRange,
  removableWhere,
  sampleLayout,
} from './removal-plan.ts'

/**
 * Options of purgeInBatches. Defaults: maxFraction 0.95, heap ranges from an estimated 10% removable spread over 60%
 * of the pages, batches sized
 * for ~100 ms (never above ~250 ms), a progress line every 5 s.
 */
export interface PurgeOptions {
  table: 'sessions' | 'tokens'
  /** A row is removable when any range matches (`expires_at < now`, `revoked_at < now - 24h`); each column is indexed. */
  ranges: readonly RemovalRange[]
  dryRun: boolean
  signal: AbortSignal
  log?: Logger
  /** The safety rail: refuse when more than this share of the table would go. */
  maxFraction?: number
  /** The variable named in the safety-rail message. */
  maxFractionVariable?: string
  /** Estimated removable share from which whole heap ranges may be swept instead of index ranges. */
  heapThreshold?: number
  /** Share of sampled pages holding a removable row from which the whole heap is swept (default 0.6). */
  heapPageShare?: number
  /** Heap pages the layout sample reads (default 400). */
  samplePages?: number
  /** Wall time one batch (one transaction) aims at. */
  targetBatchMs?: number
  /** Connections running batches at the same time (default 2); each holds one short transaction at a time. */
  connections?: number
  progressEveryMs?: number
}

/** What one reason (range) covers in a dry run. */
export interface PurgeReason {
  rows: number
  oldest: string | null
  newest: string | null
}

/** What a purge did, or in a dry run would do (`wouldDelete`, exact, with oldest/newest per reason). */
export interface PurgeResult {
  deleted: number
  wouldDelete?: number
  reasons?: Record<string, PurgeReason>
  tableRows: number
  fraction: number
  strategy: 'heap' | 'index' | 'none' | 'dry-run'
  batches: number
  durationMs: number
  longestTransactionMs: number
  /** Batches rolled back at the per-statement cap and tried again smaller. */
  cappedBatches?: number
  /** Heap pages swept when the removable rows were gathered on part of the heap. */
  sweptPages?: number
}

/**
 * Deletes removable rows in short autocommit transactions. The strategy follows where the removable rows sit: spread
 * over most pages, the heap is swept in contiguous `ctid` ranges (TID range scans, no index read, each page visited
 * once); a small share, or rows gathered on part of the heap, goes by consecutive key ranges of each reason's index
 * (bitmap scans reading only the pages those rows are on, in page order, and each slice of the index once). Batch
 * sizes adapt so a transaction takes about `targetBatchMs`. A dry run counts exactly and changes nothing.
 */
export async function purgeInBatches(sql: Sql, options: PurgeOptions): Promise<PurgeResult> {
  const started = performance.now()
  const where = removableWhere(sql, options.ranges)
  const maxFraction = options.maxFraction ?? 0.95
  const railOptions = {
    table: options.table,
    maxFraction,
    variable: options.maxFractionVariable ?? `${options.table.toUpperCase()}_MAX_FRACTION`,
  }
  if (options.dryRun) return preview(sql, options, where, railOptions, started)

  // The plan is made on the first batch connection, the pool's open one, while the others open: their set-up costs
  // no time of its own.
  const reserving = reserveConnections(sql, Math.max(1, options.connections ?? 2))
  try {
    return await purge(sql, options, where, railOptions, started, reserving)
  } finally {
    for (const conn of await reserving.all.catch(() => [])) conn.release()
  }
}

async function purge(
  sql: Sql,
  options: PurgeOptions,
  where: PendingQuery<Row[]>,
  railOptions: { table: string; maxFraction: number; variable: string },
  started: number,
  reserving: Reserving,
): Promise<PurgeResult> {
  const lead = await reserving.first
  const estimate = await estimateRemoval(lead, { table: options.table, where, maxFraction: railOptions.maxFraction })
  assertWithinLimit(estimate, railOptions)
  const base = { tableRows: Math.round(estimate.total), fraction: round(estimate.fraction, 4) }
  const none = (): PurgeResult => ({
    deleted: 0,
    ...base,
    strategy: 'none',
    batches: 0,
    durationMs: elapsed(started),
    longestTransactionMs: 0,
  })
  if (estimate.removable === 0 && estimate.exact) return none()
  // A large share is swept through the heap in page order. A sample of pages tells whether the removable rows are
  // spread over it (then every page is swept) or gathered on part of it (then the sweep starts at the first sampled
  // page holding one and stops once it has deleted every row an exact count found). A small share goes by key ranges
  // of each reason's index, which read only the pages those rows are on.
  const heap = estimate.fraction >= (options.heapThreshold ?? 0.1)
  const sampling = heap ? sampleLayout(lead, { table: options.table, where, pages: options.samplePages }) : undefined
  const gatheredIn = (sampled: RemovalLayout | undefined) =>
    sampled !== undefined && sampled.pageShare < (options.heapPageShare ?? 0.6)
  // The exact count runs beside a sweep of gathered rows, from a snapshot taken before the first batch, so it counts
  // every row the batches can delete and no row twice. Its connection opens and its snapshot is taken while the sample
  // runs; it counts only if the sample finds the rows gathered.
  const counting = sampling
    ? countInSnapshot(
        sql,
        options,
        sampling.then(gatheredIn, () => false),
      )
    : undefined
  const layout = await sampling
  const gathered = gatheredIn(layout)
  const strategy = heap ? 'heap' : 'index'
  options.log?.info(`purging ${options.table}`, {
    strategy,
    estimated: Math.round(estimate.removable),
    of: Math.round(estimate.total),
    exact: estimate.exact,
    ...(layout
      ? { pagesWithRemovable: `${Math.round(layout.pageShare * 100)}% of ${layout.sampledPages} sampled` }
      : {}),
  })
  if (gathered) await counting?.snapshot
  const conns = await reserving.all
  await batchSession.set(conns, { genericPlans: true })
  try {
    const batchOptions = {
      table: options.table,
      signal: options.signal,
      log: options.log,
      targetBatchMs: options.targetBatchMs,
      progressEveryMs: options.progressEveryMs,
      expectedRows: estimate.removable,
    }
    const totals = { rows: 0, batches: 0, longestTransactionMs: 0, capped: 0, sweptPages: 0 }
    const add = (t: BatchTotals) => {
      totals.rows += t.rows
      totals.batches += t.batches
      totals.capped += t.capped ?? 0
      totals.longestTransactionMs = Math.max(totals.longestTransactionMs, t.longestTransactionMs)
    }
    // A plain DELETE: its command tag carries the count, with no RETURNING rows to collect.
    const remove = (selection: PendingQuery<Row[]>, conn: ReservedSql) =>
      conn`delete from ${conn(options.table)} where ${selection} and (${where})`
    if (layout && counting && gathered) {
      const swept = await sweepGathered(conns, options, remove, {
        ...batchOptions,
        layout,
        // A number: it counts when the rows are gathered.
        counting: counting.count as Promise<number>,
        extrasAfter: counting.count,
        add,
      })
      if (swept === undefined) return none()
      totals.sweptPages = swept
    } else if (strategy === 'heap') {
      add(await sweepHeap(conns, batchOptions, remove))
    } else {
      add(await walkKeyRanges(conns, { ...batchOptions, ranges: options.ranges }, remove))
    }
    return {
      deleted: totals.rows,
      ...base,
      strategy,
      batches: totals.batches,
      durationMs: elapsed(started),
      longestTransactionMs: totals.longestTransactionMs,
      cappedBatches: totals.capped,
      ...(gathered ? { sweptPages: totals.sweptPages } : {}),
    }
  } finally {
    await batchSession.reset(conns)
    await counting?.count.catch(() => {})
  }
}

/**
 * Counts the removable rows exactly in a read-only repeatable-read transaction of its own: `snapshot` settles once the
 * transaction's snapshot is taken; `count`, once `wanted` says whether to count, with the count (null when not
 * wanted). Run serially (no parallel workers), as it runs beside the batches.
 */
function countInSnapshot(
  sql: Sql,
  options: PurgeOptions,
  wanted: Promise<boolean>,
): { snapshot: Promise<void>; count: Promise<number | null> } {
  let taken!: () => void
  const snapshot = new Promise<void>((resolve) => {
    taken = resolve
  })
  const count = sql.begin('isolation level repeatable read read only', async (tx) => {
    // A SELECT takes the transaction's snapshot; SET would not.
    await tx`select set_config('max_parallel_workers_per_gather', '0', true)`
    taken()
    if (!(await wanted)) return null
    return countRemovable(tx as unknown as Sql, options.table, options.ranges)
  })
  // A count that fails before its snapshot must not leave the purge waiting on it.
  count.catch(() => taken())
  return { snapshot, count }
}

/**
 * Sweeps a heap whose removable rows are gathered on part of it, stopping as soon as the batches have deleted as many
 * rows as the exact count found: first the stretch the sample found them on (widened by six sampling gaps each side,
 * so it misses rows only with odds of about 1 in 400), then, only while rows are still missing (the sample was
 * unlucky, or live traffic changed rows meanwhile), the pages before it and after it. Returns the pages swept, or
 * undefined when the count found nothing to remove.
 */
async function sweepGathered(
  conns: readonly ReservedSql[],
  options: PurgeOptions,
  remove: BatchStatement,
  run: BatchOptions & { layout: RemovalLayout; counting: Promise<number>; add: (t: BatchTotals) => void },
): Promise<number | undefined> {
  const { layout } = run
  let expected: number | undefined
  void run.counting.then(
    (n) => {
      expected = n
    },
    () => {},
  )
  let found = 0
  const counted: BatchStatement = async (selection, conn) => {
    const result = await remove(selection, conn)
    found += result.count
    return result
  }
  const gap = Math.ceil(layout.pages / Math.max(1, layout.sampledPages))
  const widen = 6 * gap
  // A start within a tenth of the table from its first page, or an end as near its last, is taken to the edge.
  let start = Math.max(0, (layout.firstPage ?? 0) - widen)
  if (start < layout.pages / 10) start = 0
  let end = layout.lastPage === null ? Number.POSITIVE_INFINITY : layout.lastPage + 1 + widen
  if (end > layout.pages * 0.9) end = Number.POSITIVE_INFINITY
  let swept = 0
  const sweep = async (from: number, to: number) => {
    const totals = await sweepHeap(
      conns,
      {
        ...run,
        pages: { from, to },
        until: () => expected !== undefined && found >= expected,
        rowsLeft: () => (expected === undefined ? undefined : expected - found),
      },
      counted,
    )
    run.add(totals)
    swept += totals.pages ?? 0
  }
  await sweep(start, end)
  expected = await run.counting
  if (expected === 0 && found === 0) return undefined
  if (found < expected && (start > 0 || end !== Number.POSITIVE_INFINITY)) {
    run.log?.info(`${options.table}: some removable rows lie outside pages ${start}–${end}; sweeping the rest too`)
    if (start > 0) await sweep(0, start)
    if (end !== Number.POSITIVE_INFINITY) await sweep(end, Number.POSITIVE_INFINITY)
  }
  return swept
}

async function preview(
  sql: Sql,
  options: PurgeOptions,
  where: PendingQuery<Row[]>,
  railOptions: { table: string; maxFraction: number; variable: string },
  started: number,
): Promise<PurgeResult> {
  const table = sql(options.table)
  const [totals] = await sql<{ total: number; removable: number }[]>`
    select count(*)::float8 as total, count(*) filter (where ${where})::float8 as removable from ${table}`
  const total = totals?.total ?? 0
  const removable = totals?.removable ?? 0
  const reasons: Record<string, PurgeReason> = {}
  for (const range of options.ranges) {
    const column = sql(range.column)
    const [r] = await sql<{ rows: number; oldest: Date | null; newest: Date | null }[]>`
      select count(*)::int as rows, min(${column}) as oldest, max(${column}) as newest
      from ${table} where ${column} < ${range.before}`
    reasons[range.column] = {
      rows: r?.rows ?? 0,
      oldest: r?.oldest ? r.oldest.toISOString() : null,
      newest: r?.newest ? r.newest.toISOString() : null,
    }
    options.log?.info(`dry run: ${options.table} with ${range.column} before ${range.before.toISOString()}`, {
      ...reasons[range.column],
    })
  }
  const estimate = { total, removable, fraction: total === 0 ? 0 : removable / total, exact: true }
  options.log?.info(`dry run: would delete ${removable} of ${total} ${options.table}`, {
    share: `${(estimate.fraction * 100).toFixed(1)}%`,
  })
  try {
    assertWithinLimit(estimate, railOptions)
  } catch (err) {
    options.log?.warn(`dry run: a real run would refuse: ${(err as Error).message}`)
  }
  return {
    deleted: 0,
    wouldDelete: removable,
    reasons,
    tableRows: total,
    fraction: round(estimate.fraction, 4),
    strategy: 'dry-run',
    batches: 0,
    durationMs: elapsed(started),
    longestTransactionMs: 0,
  }
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started)
}

function round(value: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}
