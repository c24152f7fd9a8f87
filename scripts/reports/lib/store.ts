import type { JobContext, Notice, NotifyResult } from '@admin-jobs/sdk'
import { type ChannelDelivery, messageByKey } from '@admin-jobs/sdk/platform'
import type { Sql, TransactionSql } from 'postgres'
import type { Bounds } from './period.ts'

/** A report as jobs.reports keeps it. */
export interface ReportRecord {
  bounds: Bounds
  data: unknown
  markdown: string
  runId: number
}

/** Inserts or regenerates the report of (kind, period); returns how many times the period was generated. */
export async function saveReport(sql: Sql | TransactionSql, report: ReportRecord): Promise<{ generations: number }> {
  const { bounds } = report
  const [row] = await sql<{ generations: number }[]>`
    insert into jobs.reports (kind, period, timezone, period_start, period_end, data, markdown, run_id)
    values (${bounds.kind}, ${bounds.key}, ${bounds.timezone}, ${bounds.from}, ${bounds.to},
            ${sql.json(report.data as never)}, ${report.markdown}, ${report.runId})
    on conflict (kind, period) do update set
      timezone = excluded.timezone, period_start = excluded.period_start, period_end = excluded.period_end,
      data = excluded.data, markdown = excluded.markdown, run_id = excluded.run_id,
      generated_at = now(), generations = jobs.reports.generations + 1
    returning generations`
  return { generations: row!.generations }
}

/**
 * Stores the report and, in the same transaction, queues its notice under `notice.key` (when given: without a
 * channel nothing is queued, so a later run that has one still sends it). A run that dies before the commit leaves
 * neither; one that dies after leaves the notice to the next run's deliver phase. A key already queued (a re-run, a
 * retry) queues nothing.
 */
export async function storeReport(
  sql: Sql,
  notify: JobContext['notify'],
  report: ReportRecord & { notice?: Notice },
): Promise<{ generations: number; queued?: NotifyResult }> {
  return sql.begin(async (tx) => {
    const stored = await saveReport(tx, report)
    const queued = report.notice ? await notify(report.notice, tx) : undefined
    return { ...stored, queued }
  }) as Promise<{ generations: number; queued?: NotifyResult }>
}

/** What became of the report queued under `key`, per channel, read from the outbox. */
export interface ReportDelivery {
  /** Every channel it was queued for took it. */
  delivered: boolean
  channels: ChannelDelivery[]
}

/** The delivery of the report queued under `key` (undefined when none was). */
export async function reportDelivery(sql: Sql, key: string): Promise<ReportDelivery | undefined> {
  const message = await messageByKey(sql, key)
  if (!message) return undefined
  const { deliveries } = message
  return { delivered: deliveries.length > 0 && deliveries.every((d) => d.status === 'sent'), channels: deliveries }
}

/** One channel's delivery in words: `email sent 2026-11-28 01:13 UTC`, `slack pending (2 attempts: HTTP 500)`. */
export function describeDelivery(d: ChannelDelivery): string {
  if (d.status === 'sent')
    return `${d.channel} sent${d.sentAt ? ` ${d.sentAt.toISOString().slice(0, 16).replace('T', ' ')} UTC` : ''}`
  const tries = `${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`
  return `${d.channel} ${d.status} (${d.lastError ? `${tries}: ${d.lastError}` : tries})`
}
