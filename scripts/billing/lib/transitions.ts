/** A license row as the billing job reads it (docs/reference.md, "Admin tables"). */
export interface License {
  id: string
  customer: string
  product: string
  seats: number
  seats_used: number
  expires_at: Date
  status: string
  contact_email: string | null
}

/** A subscription row as the billing job reads it (docs/reference.md, "Admin tables"). */
export interface Subscription {
  id: string
  customer: string
  plan: string
  status: string
  current_period_end: Date
  cancel_at_period_end: boolean
  contact_email: string | null
}

/** A status change the job makes, with the audit action it records. */
export interface Transition {
  action: 'license.expired' | 'subscription.expired' | 'subscription.canceled'
  to: 'expired' | 'canceled'
  reason: string
}

const day = 24 * 60 * 60 * 1000

/** The change due for a license at `now`: an active license whose `expires_at` is past (strictly) becomes expired. */
export function licenseTransition(license: Pick<License, 'status' | 'expires_at'>, now: Date): Transition | undefined {
  if (license.status === 'active' && license.expires_at.getTime() < now.getTime()) {
    return { action: 'license.expired', to: 'expired', reason: 'expires_at has passed' }
  }
  return undefined
}

/**
 * The change due for a subscription at `now` (all comparisons strict: a period "ended" once `now` is after its end):
 * cancel_at_period_end with the period ended → canceled (from trialing, active or past_due: the customer's request wins);
 * trialing with the period ended → expired; past_due more than `graceDays` after the period end → expired.
 */
export function subscriptionTransition(
  sub: Pick<Subscription, 'status' | 'current_period_end' | 'cancel_at_period_end'>,
  now: Date,
  graceDays: number,
): Transition | undefined {
  const end = sub.current_period_end.getTime()
  const ended = end < now.getTime()
  if (sub.cancel_at_period_end && ended && ['trialing', 'active', 'past_due'].includes(sub.status)) {
    return { action: 'subscription.canceled', to: 'canceled', reason: 'canceled at period end' }
  }
  if (sub.status === 'trialing' && ended) {
    return { action: 'subscription.expired', to: 'expired', reason: 'trial ended' }
  }
  if (sub.status === 'past_due' && end + graceDays * day < now.getTime()) {
    return { action: 'subscription.expired', to: 'expired', reason: `past due for more than ${graceDays} days` }
  }
  return undefined
}

/** True when a license uses more seats than it has. */
export function isOverAllocated(license: Pick<License, 'seats' | 'seats_used'>): boolean {
  return license.seats_used > license.seats
}
