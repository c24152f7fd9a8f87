import type { PendingQuery, Row, Sql } from 'postgres'
import { AbortedError } from './errors.ts'
import type { Logger } from './log.ts'

/** Options of purgeInBatches; default batch 5,000 rows. */
export interface PurgeOptions {
  table: 'sessions' | 'tokens'
  where: PendingQuery<Row[]>
  dryRun: boolean
  signal: AbortSignal
  log?: Logger
  batchSize?: number
}

/** What a purge did (or would do, in a dry run). */
export interface PurgeResult {
  deleted: number
  batches: number
}

/** Deletes the rows matching `where` in short transactions of at most `batchSize` rows; a dry run only counts them. */
export async function purgeInBatches(sql: Sql, options: PurgeOptions): Promise<PurgeResult> {
  const table = sql(options.table)
  if (options.dryRun) {
    const [row] = await sql<{ n: string }[]>`select count(*) as n from ${table} where ${options.where}`
    return { deleted: Number(row?.n ?? 0), batches: 0 }
  }
  const batchSize = options.batchSize ?? 5000
  let deleted = 0
  let batches = 0
  for (;;) {
    if (options.signal.aborted) throw options.signal.reason ?? new AbortedError('aborted')
    const result = await sql`
      delete from ${table} where ctid = any(array(
        select ctid from ${table} where ${options.where} limit ${batchSize}))`
    batches++
    deleted += result.count
    if (result.count < batchSize) return { deleted, batches }
  }
}
