import { AbortedError, type EnvReader, type JobContext } from '@admin-jobs/sdk'
import { type AppliedChange, applyChange, describeChange, findDueChanges } from './changes.ts'
import { queueAdminDigest, queueLeftoverNotices } from './notices.ts'
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
 * The billing/licenses job: makes every due license/subscription status change, each in its own transaction with its
 * audit row and its customer notice (queued in the outbox), queues one digest of the changes to the admins, and
 * raises or resolves seat over-allocation alerts. The runner delivers the notices after the job; a run that dies
 * leaves them to the next. A dry run lists the changes and changes, queues and records nothing.
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
        notify: ctx.notify,
      })
      if (!done) continue
      applied.push(done)
      log.info(`changed ${describeChange(done)}`)
    }
  }
  const count = (action: string) => listed.filter((c) => c.transition.action === action).length
  const leftover = await queueLeftoverNotices(ctx)
  const seats = await checkSeats(ctx)
  const digest = await queueAdminDigest(ctx)
  if (listed.length) {
    summary.add(dryRun ? '### Changes this run would make' : '### Changes made')
    summary.table([
      ['entity', 'id', 'customer', 'from', 'to', 'reason'],
      ...listed.map((c) => [c.entity, c.row.id, c.row.customer, c.row.status, c.transition.to, c.transition.reason]),
    ])
  }
  const notices = applied.filter((c) => c.notice !== undefined)
  return {
    licensesExpired: count('license.expired'),
    subscriptionsExpired: count('subscription.expired'),
    subscriptionsCanceled: count('subscription.canceled'),
    ...(dryRun ? { changes: due.map(describeChange) } : {}),
    noticesQueued: notices.filter((c) => c.notice!.queued).length + leftover.queued,
    noticesRefused: notices.filter((c) => c.notice!.refused).length + leftover.refused,
    ...(leftover.due ? { earlierNotices: leftover.due } : {}),
    digestChanges: digest.changes,
    digestQueued: digest.queued,
    overAllocated: seats.overAllocated,
    seatAlerts: seats.alerted,
    seatAlertsResolved: seats.resolved,
  }
}
