import { AbortedError, type EnvReader, type JobContext } from '@admin-jobs/sdk'
import { type AppliedChange, applyChange, describeChange, findDueChanges } from './changes.ts'
import { sendAdminDigest, sendCustomerNotices } from './notices.ts'
import { checkSeats } from './seats.ts'

/** Settings of billing/licenses: SUBSCRIPTION_GRACE_DAYS (default 7, 0–365). */
export interface BillingSettings {
  graceDays: number
}

/** Reads the billing job's settings (a bad value is exit 2). */
export function readBillingSettings(read: EnvReader): BillingSettings {
  return { graceDays: read.integer('SUBSCRIPTION_GRACE_DAYS', 7, { min: 0, max: 365 }) }
}

/**
 * The billing/licenses job: makes every due license/subscription status change (each in its own transaction with its
 * audit row), sends the customer notices and the admins' digest, and raises or resolves seat over-allocation alerts.
 * A dry run lists the changes and changes, sends and records nothing.
 */
export async function runBilling(ctx: JobContext<BillingSettings>) {
  const { sql, log, dryRun, signal, settings, summary } = ctx
  const now = ctx.now()
  const due = await findDueChanges(sql, now, settings.graceDays)
  const applied: AppliedChange[] = []
  const listed = dryRun ? due : applied
  if (dryRun) {
    for (const change of due) log.info(`dry run: would change ${describeChange(change)}`)
  } else {
    for (const change of due) {
      if (signal.aborted) throw new AbortedError('stopped before all changes were made', { cause: signal.reason })
      const done = await applyChange(sql, change, {
        now,
        graceDays: settings.graceDays,
        runId: ctx.run.id,
        job: ctx.job,
      })
      if (!done) continue
      applied.push(done)
      log.info(`changed ${describeChange(done)}`)
    }
  }
  const count = (action: string) => listed.filter((c) => c.transition.action === action).length
  // Notices go out after the commits; the ledger makes a notice left behind by a dead run go out on the next one.
  const notices = await sendCustomerNotices(ctx)
  const seats = await checkSeats(ctx)
  const digest = await sendAdminDigest(ctx)
  if (listed.length) {
    summary.add(dryRun ? '### Changes this run would make' : '### Changes made')
    summary.table([
      ['entity', 'id', 'customer', 'from', 'to', 'reason'],
      ...listed.map((c) => [c.entity, c.row.id, c.row.customer, c.row.status, c.transition.to, c.transition.reason]),
    ])
  }
  if (notices.failed > 0) {
    // The changes are made; the failed notices are retried by the next run, which this failure makes sure someone sees.
    throw new Error(
      `${notices.failed} of ${notices.pending} customer notices could not be sent; the next run retries them`,
    )
  }
  return {
    licensesExpired: count('license.expired'),
    subscriptionsExpired: count('subscription.expired'),
    subscriptionsCanceled: count('subscription.canceled'),
    ...(dryRun ? { changes: due.map(describeChange) } : {}),
    noticesSent: notices.sent,
    noticesSkipped: notices.skipped,
    noticesPending: dryRun ? notices.pending : 0,
    digestChanges: digest.changes,
    digestChannels: digest.delivered.join(',') || undefined,
    overAllocated: seats.overAllocated,
    seatAlerts: seats.alerted,
    seatAlertsResolved: seats.resolved,
  }
}
