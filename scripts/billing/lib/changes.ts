import type { JobContext, NotifyResult } from '@admin-jobs/sdk'
import type { Sql } from 'postgres'
import { queueCustomerNotice } from './notices.ts'
import {
  type License,
  licenseTransition,
  type Subscription,
  subscriptionTransition,
  type Transition,
} from './transitions.ts'

/** One due status change: the row as read, and the transition it is due for. */
export type DueChange =
  | { entity: 'license'; row: License; transition: Transition }
  | { entity: 'subscription'; row: Subscription; transition: Transition }

/**
 * A change that was made: its due change, the ids of its audit_logs and jobs.billing_changes rows, and what the outbox
 * made of its customer notice (none without a contact email).
 */
export type AppliedChange = DueChange & { changeId: string; auditLogId: string; notice?: NotifyResult }

/** Every license and subscription due for a change at `now` (candidates by SQL, decided by the pure transition rules). */
export async function findDueChanges(sql: Sql, now: Date, graceDays: number): Promise<DueChange[]> {
  const licenses = await sql<License[]>`
    select id, customer, product, seats, seats_used, expires_at, status, contact_email
    from licenses where status = 'active' and expires_at < ${now} order by id`
  const subscriptions = await sql<Subscription[]>`
    select id, customer, plan, status, current_period_end, cancel_at_period_end, contact_email
    from subscriptions
    where status in ('trialing', 'active', 'past_due') and current_period_end < ${now} order by id`
  const due: DueChange[] = []
  for (const row of licenses) {
    const transition = licenseTransition(row, now)
    if (transition) due.push({ entity: 'license', row, transition })
  }
  for (const row of subscriptions) {
    const transition = subscriptionTransition(row, now, graceDays)
    if (transition) due.push({ entity: 'subscription', row, transition })
  }
  return due
}

/**
 * Makes one change in one transaction with its audit_logs row (actor null, metadata before/after), its
 * jobs.billing_changes row and its customer notice, queued in the outbox: the notice exists exactly when the change
 * does. The row is locked and its transition decided again, so a change made meanwhile (or by a concurrent run) is not
 * made twice: then it returns undefined.
 */
export async function applyChange(
  sql: Sql,
  due: DueChange,
  options: { now: Date; graceDays: number; runId?: number; job: string; notify: JobContext['notify'] },
): Promise<AppliedChange | undefined> {
  return sql.begin(async (tx) => {
    let before: License | Subscription | undefined
    let transition: Transition | undefined
    if (due.entity === 'license') {
      const [row] = await tx<License[]>`
        select id, customer, product, seats, seats_used, expires_at, status, contact_email
        from licenses where id = ${due.row.id} for update`
      before = row
      transition = row && licenseTransition(row, options.now)
      if (row && transition) await tx`update licenses set status = ${transition.to} where id = ${row.id}`
    } else {
      const [row] = await tx<Subscription[]>`
        select id, customer, plan, status, current_period_end, cancel_at_period_end, contact_email
        from subscriptions where id = ${due.row.id} for update`
      before = row
      transition = row && subscriptionTransition(row, options.now, options.graceDays)
      if (row && transition) await tx`update subscriptions set status = ${transition.to} where id = ${row.id}`
    }
    if (!before || !transition) return undefined
    const after = { ...before, status: transition.to }
    const metadata = {
      before: { ...before },
      after,
      reason: transition.reason,
      job: options.job,
      ...(options.runId !== undefined ? { run_id: options.runId } : {}),
    }
    const [audit] = await tx<{ id: string }[]>`
      insert into audit_logs (occurred_at, actor_id, action, target_type, target_id, metadata)
      values (${options.now}, null, ${transition.action}, ${due.entity}, ${String(before.id)}, ${tx.json(metadata as never)})
      returning id`
    const [change] = await tx<{ id: string }[]>`
      insert into jobs.billing_changes
        (changed_at, run_id, entity, entity_id, action, customer, contact_email, before, after, audit_log_id)
      values (${options.now}, ${options.runId ?? null}, ${due.entity}, ${before.id}, ${transition.action},
              ${before.customer}, ${before.contact_email}, ${tx.json(metadata.before as never)},
              ${tx.json(after as never)}, ${audit!.id})
      returning id`
    // A blank contact is no contact; anything else goes to the outbox, which refuses what is not one address.
    const notice = !before.contact_email?.trim()
      ? undefined
      : await queueCustomerNotice(tx, options.notify, {
          id: change!.id,
          entity: due.entity,
          action: transition.action,
          customer: before.customer,
          before: metadata.before,
          contact_email: before.contact_email,
        })
    return { ...due, row: before, transition, changeId: change!.id, auditLogId: audit!.id, notice } as AppliedChange
  })
}

/** A one-line description of a change, for logs, digests and dry runs. */
export function describeChange(change: Pick<DueChange, 'entity' | 'row' | 'transition'>): string {
  const what =
    change.entity === 'license'
      ? `license ${change.row.id} (${change.row.customer}, ${(change.row as License).product})`
      : `subscription ${change.row.id} (${change.row.customer}, ${(change.row as Subscription).plan})`
  return `${what}: ${change.row.status} → ${change.transition.to} (${change.transition.reason})`
}
