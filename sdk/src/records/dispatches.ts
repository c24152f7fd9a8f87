import type { Sql } from 'postgres'

/** A claimed dispatch of one job's slot (`jobs.dispatches`). */
export interface DispatchClaim {
  job: string
  slot: Date
  claimedAt: Date
  claimedBy: string
  /** `claimed` (API call under way), `sent` (GitHub took it, or may have) or `refused` (GitHub said no; claimable again). */
  status: 'claimed' | 'sent' | 'refused'
  workflow: string | null
  error: string | null
}

interface Row {
  job: string
  slot: Date
  claimed_at: Date
  claimed_by: string
  status: DispatchClaim['status']
  workflow: string | null
  error: string | null
}

const toClaim = (r: Row): DispatchClaim => ({
  job: r.job,
  slot: r.slot,
  claimedAt: r.claimed_at,
  claimedBy: r.claimed_by,
  status: r.status,
  workflow: r.workflow,
  error: r.error,
})

/**
 * Claims the dispatch of `job`'s `slot` for `by`, at `at` (default now): true when this caller won it. A slot already
 * claimed or sent stays with its first claimer, so two dispatchers (or a dispatcher and the watchdog) never both send
 * it; one GitHub refused may be claimed again.
 */
export async function claimDispatch(
  sql: Sql,
  claim: { job: string; slot: Date; by: string; workflow?: string; at?: Date },
): Promise<boolean> {
  const at = claim.at ?? new Date()
  const rows = await sql`
    insert into jobs.dispatches (job, slot, claimed_at, claimed_by, status, workflow)
    values (${claim.job}, ${claim.slot}, ${at}, ${claim.by}, 'claimed', ${claim.workflow ?? null})
    on conflict (job, slot) do update
      set claimed_at = excluded.claimed_at, claimed_by = excluded.claimed_by, status = 'claimed', error = null
      where jobs.dispatches.status = 'refused'
    returning 1`
  return rows.length > 0
}

/** Records what GitHub answered to a claimed dispatch: `sent`, or `refused` with the error (claimable again). */
export async function settleDispatch(
  sql: Sql,
  claim: { job: string; slot: Date },
  outcome: { status: 'sent' } | { status: 'refused'; error: string },
): Promise<void> {
  await sql`
    update jobs.dispatches set status = ${outcome.status}, error = ${'error' in outcome ? outcome.error : null}
    where job = ${claim.job} and slot = ${claim.slot}`
}

/** The dispatches claimed at or after `since`, newest first per job. */
export async function recentDispatches(sql: Sql, since: Date): Promise<DispatchClaim[]> {
  const rows = await sql<Row[]>`
    select job, slot, claimed_at, claimed_by, status, workflow, error from jobs.dispatches
    where claimed_at >= ${since}
    order by job, slot desc`
  return rows.map(toClaim)
}

/** The claims of these slots (one query), keyed `job@slotISO`. */
export async function claimsOf(sql: Sql, slots: readonly { job: string; slot: Date }[]): Promise<Set<string>> {
  if (slots.length === 0) return new Set()
  const rows = await sql<{ job: string; slot: Date }[]>`
    select d.job, d.slot from jobs.dispatches d
    join unnest(${slots.map((s) => s.job)}::text[], ${slots.map((s) => s.slot.toISOString())}::timestamptz[]) as w(job, slot)
      on d.job = w.job and d.slot = w.slot
    where d.status <> 'refused'`
  return new Set(rows.map((r) => slotKey(r.job, r.slot)))
}

/** The key claimsOf and servedSlots use for one job's slot. */
export const slotKey = (job: string, slot: Date): string => `${job}@${slot.toISOString()}`
