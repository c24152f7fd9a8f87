import type { ReservedSql } from 'postgres'
import {
  adaptBatch,
  type BatchOptions,
  type BatchStatement,
  type BatchTotals,
  CapReached,
  connectionList,
  onEachConnection,
  processed,
} from './batches.ts'
import { createProgress } from './progress.ts'
import { readTableLayout } from './table-layout.ts'

/** Options of sweepHeap beyond the shared batch options. */
export interface SweepOptions extends BatchOptions {
  /** Limits the sweep to pages `from` (inclusive) to `to` (exclusive). */
  pages?: { from: number; to: number }
  /** Stops the sweep once it says the work is done (checked before each batch claims its pages). */
  until?: () => boolean
  /** Rows still to find, when known: keeps a batch from reaching far past where, at the density seen, they should end. */
  rowsLeft?: () => number | undefined
  /** Heap pages of the first batch on each connection (default 32); sizes adapt from there. */
  initialPages?: number
}

/**
 * Runs `statement` over contiguous heap ranges (`ctid >= '(a,0)' and ctid < '(b,0)'`, a TID range scan): every page
 * is read once and no index is walked. Given several connections, each runs its own batches at the same time, claiming
 * the next range of pages from a shared cursor, so the sweep goes at the speed of that many server processes while each
 * transaction stays as short as with one; a range rolled back at the cap is redone in smaller pieces by the connection
 * that claimed it before it claims new pages. The first error stops every connection after its current batch and is
 * thrown once all have stopped. Pages appended after the start are not visited (rows written after the cutoff).
 */
export async function sweepHeap(
  connections: ReservedSql | readonly ReservedSql[],
  options: SweepOptions,
  statement: BatchStatement,
): Promise<BatchTotals> {
  const conns = connectionList(connections)
  const lead = conns[0]!
  // Heap ranges of a partitioned parent or an inheritance parent would miss every row in its children: refuse. The
  // check and the size go in one round trip.
  const [, [size]] = await Promise.all([
    readTableLayout(lead, options.table),
    lead<{ pages: number }[]>`
      select (pg_relation_size(${options.table}::regclass) / current_setting('block_size')::int)::int as pages`,
  ])
  const first = options.pages?.from ?? 0
  const last = Math.min(size?.pages ?? 0, options.pages?.to ?? Number.POSITIVE_INFINITY)
  const targetMs = options.targetBatchMs ?? 100
  const progress = createProgress({ log: options.log, label: options.table, everyMs: options.progressEveryMs })
  const minStep = 16
  const shared = { next: first, rows: 0, pages: 0 }

  const totals = await onEachConnection(conns, options, async (conn, batcher, stopped, turn) => {
    // Start small (a first batch on a cold table can be slow) and let the sizes grow towards the target.
    let step = options.initialPages ?? 32
    // A range rolled back at the cap, still to be done by this connection.
    let redo: { from: number; to: number } | null = null
    const nothingLeft = () => shared.next >= last || options.until?.() === true
    for (;;) {
      if (!redo) await turn(nothingLeft)
      if (stopped() || (!redo && nothingLeft())) break
      const pending = redo as { from: number; to: number } | null
      let from: number
      let to: number
      if (pending) {
        from = pending.from
        to = Math.min(pending.to, from + step)
      } else {
        const density = shared.rows / Math.max(1, shared.pages)
        const left = options.rowsLeft?.()
        const reach = left !== undefined && density > 0 ? Math.ceil((1.25 * left) / density) + minStep : step
        from = shared.next
        to = Math.min(last, from + Math.max(1, Math.min(step, reach)))
        shared.next = to
      }
      let batch: { value: number; ms: number }
      try {
        batch = await batcher.run(
          async () =>
            processed(await statement(conn`ctid >= ${`(${from},0)`}::tid and ctid < ${`(${to},0)`}::tid`, conn)),
          step <= minStep,
        )
      } catch (err) {
        if (!(err instanceof CapReached)) throw err
        step = Math.max(minStep, Math.floor(step / 4))
        redo = { from, to: pending?.to ?? to }
        continue
      }
      redo = pending && to < pending.to ? { from: to, to: pending.to } : null
      batcher.totals.rows += batch.value
      shared.rows += batch.value
      shared.pages += to - from
      step = adaptBatch(step, batch.ms, targetMs, minStep, 100_000)
      progress.update(shared.rows, shared.pages / Math.max(1, last - first))
    }
  })
  return { ...totals, pages: shared.pages }
}
