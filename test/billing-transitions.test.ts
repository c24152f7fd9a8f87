import { describe, expect, it } from 'vitest'
import { isOverAllocated, licenseTransition, subscriptionTransition } from '#billing'

const now = new Date('2026-06-15T12:00:00Z')
const at = (ms: number) => new Date(now.getTime() + ms)
const day = 86_400_000

describe('license transitions', () => {
  it('expires an active license one millisecond past its expires_at and not at the exact instant', () => {
    expect(licenseTransition({ status: 'active', expires_at: at(-1) }, now)?.action).toBe('license.expired')
    expect(licenseTransition({ status: 'active', expires_at: now }, now)).toBeUndefined()
    expect(licenseTransition({ status: 'active', expires_at: at(1) }, now)).toBeUndefined()
  })

  it('leaves suspended and already expired licenses alone', () => {
    expect(licenseTransition({ status: 'suspended', expires_at: at(-day) }, now)).toBeUndefined()
    expect(licenseTransition({ status: 'expired', expires_at: at(-day) }, now)).toBeUndefined()
  })

  it('counts a license as over-allocated only when more seats are used than it has', () => {
    expect(isOverAllocated({ seats: 10, seats_used: 11 })).toBe(true)
    expect(isOverAllocated({ seats: 10, seats_used: 10 })).toBe(false)
  })
})

describe('subscription transitions', () => {
  const sub = (status: string, end: Date, cancel = false) => ({
    status,
    current_period_end: end,
    cancel_at_period_end: cancel,
  })

  it('expires a past_due subscription only once the grace period after the period end is over', () => {
    expect(subscriptionTransition(sub('past_due', at(-7 * day - 1)), now, 7)?.action).toBe('subscription.expired')
    expect(subscriptionTransition(sub('past_due', at(-7 * day)), now, 7)).toBeUndefined()
    expect(subscriptionTransition(sub('past_due', at(-3 * day)), now, 7)).toBeUndefined()
    expect(subscriptionTransition(sub('past_due', at(-3 * day)), now, 2)?.action).toBe('subscription.expired')
  })

  it('cancels a subscription set to cancel at period end once the period has ended', () => {
    expect(subscriptionTransition(sub('active', at(-1), true), now, 7)?.action).toBe('subscription.canceled')
    expect(subscriptionTransition(sub('active', now, true), now, 7)).toBeUndefined()
    expect(subscriptionTransition(sub('trialing', at(-1), true), now, 7)?.to).toBe('canceled')
    expect(subscriptionTransition(sub('past_due', at(-1), true), now, 7)?.to).toBe('canceled')
    expect(subscriptionTransition(sub('canceled', at(-day), true), now, 7)).toBeUndefined()
  })

  it('expires a trial whose period has ended and keeps an active subscription without a cancel request', () => {
    expect(subscriptionTransition(sub('trialing', at(-1)), now, 7)?.action).toBe('subscription.expired')
    expect(subscriptionTransition(sub('trialing', at(1)), now, 7)).toBeUndefined()
    expect(subscriptionTransition(sub('active', at(-30 * day)), now, 7)).toBeUndefined()
    expect(subscriptionTransition(sub('expired', at(-30 * day)), now, 7)).toBeUndefined()
  })
})
