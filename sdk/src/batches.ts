import type { PendingQuery, ReservedSql, Row } from 'postgres'
import { AbortedError } from './errors.ts'
import type { Logger } from './log.ts'
import { createProgress } from './progress.ts'
import { sleep } from './retry.ts'

/** Options shared by the batch engines; defaults: ~100 ms per batch, a progress line every 5 s. */
export interface BatchOptions {
  table: string
  signal: AbortSignal
  log?: Logger
  /** Wall time one batch (one autocommit transaction) aims at; sizes adapt to it. */
  targetBatchMs?: number
  progressEveryMs?: number
  /** The rows the loop expects to process, for the progress ETA of index walks. */
  expectedRows?: number
}

/** What an engine did: rows the batch statements reported, batches, and the slowest batch (= longest transaction). */
export interface BatchTotals {
  rows: number
  batches: number
  longestTransactionMs: number
}

/** A batch statement: the rows it processed are its first row's `n` when it has one, else its command's row count. */
export type BatchStatement = (selection: PendingQuery<Row[]>) => PendingQuery<Row[]>

function processed(result: { count: number; [index: number]: Row | undefined }): number {
  const n = result[0]?.n
  return typeof n === 'number' ? n : result.count
}

function createBatcher(options: BatchOptions) {
  const totals = { rows: 0, batches: 0, longest: 0 }
  return {
    totals,
    /** Runs one batch; a lock timeout (55P03) rolls it back and it is tried again a few times. */
    async run<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
      for (let attempt = 1; ; attempt++) {
        if (options.signal.aborted) throw options.signal.reason ?? new AbortedError('aborted')
        const t0 = performance.now()
        try {
          const value = await fn()
          const ms = performance.now() - t0
          totals.longest = Math.max(totals.longest, ms)
          totals.batches++
          return { value, ms }
        } catch (err) {
          if ((err as { code?: string }).code !== '55P03' || attempt >= 5) throw err
          options.log?.warn('a batch waited too long for a row lock; retrying it', { attempt })
          await sleep(50 * attempt, options.signal)
        }
      }
    },
    result(): BatchTotals {
      return { rows: totals.rows, batches: totals.batches, longestTransactionMs: Math.round(totals.longest * 10) / 10 }
    },
  }
}

/** Scales a batch size towards the target time, at most doubling or quartering per step. */
export function adaptBatch(size: number, ms: number, targetMs: number, min: number, max: number): number {
  const factor = Math.min(2, Math.max(0.25, targetMs / Math.max(ms, 1)))
  return Math.round(Math.min(max, Math.max(min, size * factor)))
}

/**
 * Runs `statement` over contiguous heap ranges (`ctid >= '(a,0)' and ctid < '(b,0)'`, a TID range scan): every page
 * is read once and no index is walked. Starts at 32 pages per batch and adapts. Pages appended after the start are
 * not visited (rows written after the cutoff).
 */
export async function sweepHeap(
  conn: ReservedSql,
  options: BatchOptions,
  statement: BatchStatement,
): Promise<BatchTotals> {
  const [size] = await conn<{ pages: number }[]>`
    select (pg_relation_size(${options.table}::regclass) / current_setting('block_size')::int)::int as pages`
  const pages = size?.pages ?? 0
  const targetMs = options.targetBatchMs ?? 100
  const batcher = createBatcher(options)
  const progress = createProgress({ log: options.log, label: options.table, everyMs: options.progressEveryMs })
  // Start small (a first batch on a cold table can be slow) and let the sizes grow towards the target.
  let step = 32
  for (let page = 0; page < pages; ) {
    const end = Math.min(pages, page + step)
    const { value, ms } = await batcher.run(async () =>
      processed(await statement(conn`ctid >= ${`(${page},0)`}::tid and ctid < ${`(${end},0)`}::tid`)),
    )
    batcher.totals.rows += value
    page = end
    step = adaptBatch(step, ms, targetMs, 16, 100_000)
    progress.update(batcher.totals.rows, page / pages)
  }
  return batcher.result()
}

/**
 * Runs `statement` over keyset batches of one timestamp index (`column < before`, in index order): each batch starts
 * at the last key of the one before, so dead entries left by earlier batches are never walked again. The selection
 * handed to `statement` is `ctid = any($tids)`; the statement must re-check its own condition.
 */
export async function walkIndex(
  conn: ReservedSql,
  options: BatchOptions & { column: string; before: Date },
  statement: BatchStatement,
): Promise<BatchTotals> {
  const table = conn(options.table)
  const column = conn(options.column)
  const targetMs = options.targetBatchMs ?? 100
  const batcher = createBatcher(options)
  const progress = createProgress({ log: options.log, label: options.table, everyMs: options.progressEveryMs })
  let limit = 500
  // The last key travels as text so microseconds survive the round trip.
  let from: string | null = null
  for (;;) {
    const after: PendingQuery<Row[]> = from === null ? conn`` : conn`and ${column} >= ${from}::timestamptz`
    const { value, ms } = await batcher.run(async () => {
      const found = await conn<{ tids: string[]; last: string | null; found: number }[]>`
        select coalesce(array_agg(ctid::text), '{}') as tids, max(key)::text as last, count(*)::int as found from (
          select ctid, ${column} as key from ${table}
          where ${column} < ${options.before} ${after}
          order by ${column} limit ${limit}) batch`
      const batch = found[0]!
      if (batch.found === 0) return { batch, n: 0 }
      const n = processed(await statement(conn`ctid = any(${batch.tids}::tid[])`))
      return { batch, n }
    })
    batcher.totals.rows += value.n
    const expected = options.expectedRows ?? 0
    progress.update(batcher.totals.rows, expected > 0 ? Math.min(0.99, batcher.totals.rows / expected) : 0)
    const full = value.batch.found >= limit
    limit = adaptBatch(limit, ms, targetMs, 100, 200_000)
    if (!full || value.batch.last === null) break
    from = value.batch.last
  }
  return batcher.result()
}
