import type { Sql } from 'postgres'
import type { Bounds } from './period.ts'

/** What saveReport stored: how many times this period was generated and which channels already took it. */
export interface StoredReport {
  generations: number
  deliveries: Record<string, string>
}

/** Inserts or regenerates the report of (kind, period); deliveries are kept so a re-run does not send again. */
export async function saveReport(
  sql: Sql,
  report: { bounds: Bounds; data: unknown; markdown: string; runId: number },
): Promise<StoredReport> {
  const { bounds } = report
  const [row] = await sql<{ generations: number; deliveries: Record<string, string> }[]>`
    insert into jobs.reports (kind, period, timezone, period_start, period_end, data, markdown, run_id)
    values (${bounds.kind}, ${bounds.key}, ${bounds.timezone}, ${bounds.from}, ${bounds.to},
            ${sql.json(report.data as never)}, ${report.markdown}, ${report.runId})
    on conflict (kind, period) do update set
      timezone = excluded.timezone, period_start = excluded.period_start, period_end = excluded.period_end,
      data = excluded.data, markdown = excluded.markdown, run_id = excluded.run_id,
      generated_at = now(), generations = jobs.reports.generations + 1
    returning generations, deliveries`
  return { generations: row!.generations, deliveries: row!.deliveries }
}

/** The outcome of a claim: whether this run may send, and when the channel was claimed before (a forced resend). */
export interface DeliveryClaim {
  claimed: boolean
  previous: string | null
}

/**
 * Claims `channel` of a stored report for sending. Atomic: of two concurrent runs only one gets `claimed` (the row
 * lock serialises them and the second re-checks the condition after the first commits). With `force` it always
 * succeeds.
 */
export async function claimDelivery(
  sql: Sql,
  key: { kind: string; period: string },
  channel: string,
  force: boolean,
): Promise<DeliveryClaim> {
  // `o` is the row as this statement first saw it: its delivery time is the one a failed resend restores.
  const [row] = await sql<{ previous: string | null }[]>`
    update jobs.reports r
    set deliveries = r.deliveries || jsonb_build_object(${channel}::text, now()), sends = r.sends + 1
    from jobs.reports o
    where r.kind = ${key.kind} and r.period = ${key.period} and o.kind = r.kind and o.period = r.period
      and (${force} or not r.deliveries ? ${channel})
    returning o.deliveries->>${channel}::text as previous`
  return { claimed: row !== undefined, previous: row?.previous ?? null }
}

/** Gives a claim back after the send failed (restoring an earlier delivery's time), so the next run sends it again. */
export async function releaseDelivery(
  sql: Sql,
  key: { kind: string; period: string },
  channel: string,
  claim: DeliveryClaim,
): Promise<void> {
  await sql`
    update jobs.reports set sends = greatest(sends - 1, 0),
      deliveries = case when ${claim.previous}::text is null then deliveries - ${channel}::text
                        else deliveries || jsonb_build_object(${channel}::text, ${claim.previous}::text) end
    where kind = ${key.kind} and period = ${key.period}`
}
