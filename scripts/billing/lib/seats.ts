import type { JobContext } from '@admin-jobs/sdk'
import type { License } from './transitions.ts'

/** The dedupe key of a license's over-allocation incident (one open incident per license). */
export function seatsAlertKey(licenseId: string | number): string {
  return `billing/licenses:seats:${licenseId}`
}

type SeatsContext = Pick<JobContext<unknown>, 'sql' | 'log' | 'alert' | 'resolveAlert' | 'incidents'>

/** What checkSeats found and did. */
export interface SeatsResult {
  overAllocated: number
  alerted: number
  resolved: number
}

/**
 * Alerts once per over-allocated license (seats_used > seats, license not expired) until it is resolved; resolves the
 * incident of every license that is back within its seats, expired or gone.
 */
export async function checkSeats(ctx: SeatsContext): Promise<SeatsResult> {
  const { sql } = ctx
  const over = await sql<License[]>`
    select id, customer, product, seats, seats_used, expires_at, status, contact_email
    from licenses where seats_used > seats and status <> 'expired' order by id`
  let alerted = 0
  for (const license of over) {
    const result = await ctx.alert({
      severity: 'warning',
      title: `License ${license.id} of ${license.customer} is over-allocated`,
      text: `${license.product}: ${license.seats_used} seats used of ${license.seats}.`,
      fields: {
        customer: license.customer,
        product: license.product,
        seats: license.seats,
        'seats used': license.seats_used,
      },
      dedupeKey: seatsAlertKey(license.id),
    })
    if (result.kind === 'alert' || result.kind === 'reminder') alerted++
  }
  const current = new Set(over.map((l) => seatsAlertKey(l.id)))
  let resolved = 0
  for (const { key } of await ctx.incidents.open(seatsAlertKey(''))) {
    if (current.has(key)) continue
    const id = key.slice(seatsAlertKey('').length)
    await ctx.resolveAlert(key, {
      title: `License ${id} is no longer over-allocated`,
      text: `License ${id} is back within its seats (or expired, or was removed).`,
    })
    resolved++
  }
  if (over.length) ctx.log.warn('over-allocated licenses', { licenses: over.map((l) => l.id).join(',') })
  return { overAllocated: over.length, alerted, resolved }
}
