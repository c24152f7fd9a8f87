import type { ReservedSql } from 'postgres'
import {
  adaptBatch,
  type BatchOptions,
  type BatchStatement,
  type BatchTotals,
  CapReached,
  connectionList,
  createBatcher,
  onEachConnection,
  processed,
} from './batches.ts'
import { createProgress } from './progress.ts'
import type { RemovalRange } from './removal-plan.ts'

/** Microseconds since the epoch, as SQL computes them (float8 holds every microsecond of this era exactly). */
type Micros = number

/**
 * Where the keys of one timestamp column lie, as cumulative shares of its rows: `bounds[i]` is the key below which
 * `i / (bounds.length - 1)` of the rows sit. From the planner's equal-frequency histogram; without one (a table never
 * analyzed), a straight line from the column's smallest key to `before`. `rows` is how many rows the axis spans.
 */
export interface KeyAxis {
  bounds: Micros[]
  rows: number
}

/** Reads the key axis of `table.column` (pg_stats, else the index's smallest key); null when no key is below `before`. */
export async function readKeyAxis(
  conn: ReservedSql,
  options: { table: string; column: string; before: Date },
): Promise<KeyAxis | null> {
  const [stats] = await conn<{ bounds: number[] | null; rows: number }[]>`
    select (select array_agg((extract(epoch from b) * 1000000)::float8 order by i)
            from unnest(s.histogram_bounds::text::timestamptz[]) with ordinality u(b, i)) as bounds,
      greatest(c.reltuples, 0)::float8 * (1 - s.null_frac)::float8 as rows
    from pg_stats s join pg_class c on c.oid = ${`public.${options.table}`}::regclass
    where s.schemaname = 'public' and s.tablename = ${options.table} and s.attname = ${options.column}`
  if (stats?.bounds && stats.bounds.length >= 2 && stats.rows > 0) return { bounds: stats.bounds, rows: stats.rows }
  const column = conn(options.column)
  const [min] = await conn<{ key: number | null }[]>`
    select (extract(epoch from min(${column})) * 1000000)::float8 as key
    from ${conn(options.table)} where ${column} < ${options.before}`
  if (min?.key == null) return null
  const before = options.before.getTime() * 1000
  return { bounds: [min.key, Math.max(before, min.key + 1)], rows: 0 }
}

/** The key at cumulative share `q` (0–1) of the axis, interpolated inside its histogram bucket. */
export function keyAt(axis: KeyAxis, q: number): Micros {
  const buckets = axis.bounds.length - 1
  const at = Math.min(buckets, Math.max(0, q * buckets))
  const i = Math.min(buckets - 1, Math.floor(at))
  const lo = axis.bounds[i]!
  const hi = axis.bounds[i + 1]!
  return Math.round(lo + (at - i) * (hi - lo))
}

/** The cumulative share of the axis below `key` (0 below its first bound, 1 above its last). */
export function shareBelow(axis: KeyAxis, key: Micros): number {
  const { bounds } = axis
  const buckets = bounds.length - 1
  if (key <= bounds[0]!) return 0
  if (key >= bounds[buckets]!) return 1
  let i = 0
  while (bounds[i + 1]! < key) i++
  const lo = bounds[i]!
  const hi = bounds[i + 1]!
  return (i + (hi > lo ? (key - lo) / (hi - lo) : 1)) / buckets
}

/** A claimed slice of the key axis: shares `q` to `qEnd`, keys `from` (null: no lower bound) to `to` (null: `before`). */
interface KeyRange {
  q: number
  qEnd: number
  from: Micros | null
  to: Micros | null
}

/** One column's walk: its key axis, where its keys end (`end`, a share of the axis), and the cursor shared by all. */
interface ColumnWalk extends RemovalRange {
  axis: KeyAxis
  end: number
  perRow: number
  minStep: number
  /** How many rows the walk is expected to cover (from the statistics; 0 without). */
  rows: number
  cursor: { q: number; from: Micros | null; done: boolean; covered: number }
}

/**
 * Runs `statement` over consecutive key ranges of indexed timestamp columns (`column >= a and column < b`, the last
 * one ending at `before`), each sized from the key axis to take about `targetBatchMs`. A range is a bitmap index scan
 * of its own slice of the index and a heap scan of just the pages its rows sit on, in page order: the same access as
 * one DELETE's, cut into short transactions, and no slice of the index is read twice. The ranges tile the keys
 * below `before` exactly, whatever the statistics say; stale statistics only make the sizes less even. Given several
 * connections, each runs its own ranges at the same time, claiming the next one from a shared cursor: the columns one
 * after another, the one with the most rows first, a connection moving on to the next column while another finishes
 * the last range of the previous one; near the end of the last column the ranges shrink, so the connections finish
 * together. A range rolled back at the cap is redone in smaller pieces by the connection that claimed it. The first
 * error stops every connection after its current batch and is thrown once all have stopped.
 */
export async function walkKeyRanges(
  connections: ReservedSql | readonly ReservedSql[],
  options: BatchOptions & { ranges: readonly RemovalRange[]; initialRows?: number },
  statement: BatchStatement,
): Promise<BatchTotals> {
  const conns = connectionList(connections)
  const lead = conns[0]!
  const walks: ColumnWalk[] = []
  // Every column's axis in one round trip.
  const axes = await Promise.all(options.ranges.map((range) => readKeyAxis(lead, { table: options.table, ...range })))
  for (const [i, range] of options.ranges.entries()) {
    const axis = axes[i]
    if (!axis) continue
    const end = shareBelow(axis, range.before.getTime() * 1000)
    // Sizes are shares of the axis; without statistics the axis is time, and a batch starts at a hundredth of it.
    const perRow = axis.rows > 0 ? 1 / axis.rows : 0
    const minStep = perRow > 0 ? 200 * perRow : 1e-4
    const cursor = { q: 0, from: null, done: false, covered: 0 }
    walks.push({ ...range, axis, end, perRow, minStep, rows: axis.rows * end, cursor })
  }
  if (walks.length === 0) return createBatcher(lead, options).result()
  // The smaller columns last, so their short ranges fill the time while another connection finishes a long one.
  walks.sort((a, b) => b.rows - a.rows)
  const last = walks[walks.length - 1]!
  const targetMs = options.targetBatchMs ?? 100
  const progress = createProgress({ log: options.log, label: options.table, everyMs: options.progressEveryMs })
  const weight = (walk: ColumnWalk) => (walk.rows > 0 ? walk.rows : 1)
  const whole = walks.reduce((sum, walk) => sum + weight(walk), 0)
  const shared = { rows: 0 }
  const firstStep = (walk: ColumnWalk) => (walk.perRow > 0 ? (options.initialRows ?? 2_000) * walk.perRow : 0.01)

  /** The next range of `walk`, about `step` wide (the last one ends at `before`); null once its axis is used up. */
  const claim = (walk: ColumnWalk, step: number): KeyRange | null => {
    const { cursor, axis, end } = walk
    while (!cursor.done) {
      const q = cursor.q
      // The last column's tail is shared out: at most an equal part of what is left for each connection.
      const width = walk === last ? Math.min(step, Math.max(walk.minStep, (end - q) / conns.length)) : step
      const final = q + width >= end
      const to: Micros | null = final ? null : keyAt(axis, q + width)
      cursor.q = final ? end : q + width
      cursor.done = final
      // A bucket narrower than a microsecond: nothing to select between the two keys, move on.
      if (to !== null && cursor.from !== null && to <= cursor.from) continue
      const range = { q, qEnd: cursor.q, from: cursor.from, to }
      cursor.from = to
      return range
    }
    return null
  }
  /** The first `step` of a range rolled back at the cap, and what is left of it (null when the piece is all of it). */
  const split = (walk: ColumnWalk, range: KeyRange, step: number): [KeyRange, KeyRange | null] => {
    if (range.q + step >= range.qEnd) return [range, null]
    const mid = keyAt(walk.axis, range.q + step)
    if ((range.from !== null && mid <= range.from) || (range.to !== null && mid >= range.to)) return [range, null]
    return [
      { q: range.q, qEnd: range.q + step, from: range.from, to: mid },
      { q: range.q + step, qEnd: range.qEnd, from: mid, to: range.to },
    ]
  }

  return onEachConnection(conns, options, async (conn, batcher, stopped, turn) => {
    const at = (key: Micros) => conn`(timestamptz 'epoch' + ${key}::float8 * interval '1 microsecond')`
    let w = 0
    let step = firstStep(walks[0]!)
    let redo: KeyRange | null = null
    for (;;) {
      if (!redo) await turn(() => walks.every((walk) => walk.cursor.done))
      if (stopped()) break
      let range: KeyRange | null = null
      let rest: KeyRange | null = null
      if (redo) [range, rest] = split(walks[w]!, redo, step)
      else {
        // A column used up: on to the next one, starting at its own first step.
        while (w < walks.length) {
          range = claim(walks[w]!, step)
          if (range) break
          w++
          if (w < walks.length) step = firstStep(walks[w]!)
        }
      }
      if (!range) break
      const walk = walks[w]!
      const column = conn(walk.column)
      const lower = range.from === null ? conn`` : conn`${column} >= ${at(range.from)} and `
      const upper = range.to === null ? conn`${column} < ${walk.before}` : conn`${column} < ${at(range.to)}`
      let batch: { value: number; ms: number }
      try {
        batch = await batcher.run(
          async () => processed(await statement(conn`${lower}${upper}`, conn)),
          step <= walk.minStep,
        )
      } catch (err) {
        if (!(err instanceof CapReached)) throw err
        step = Math.max(walk.minStep, step / 4)
        redo = rest ? { ...range, qEnd: rest.qEnd, to: rest.to } : range
        continue
      }
      redo = rest
      batcher.totals.rows += batch.value
      shared.rows += batch.value
      walk.cursor.covered += range.qEnd - range.q
      const covered = walks.reduce((sum, x) => sum + (x.end > 0 ? (x.cursor.covered / x.end) * weight(x) : 0), 0)
      progress.update(shared.rows, Math.min(0.99, covered / whole))
      step = Math.max(walk.minStep, step * (adaptBatch(1_000_000, batch.ms, targetMs, 1, 4_000_000) / 1_000_000))
    }
  })
}
