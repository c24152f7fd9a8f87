import { firstLine, type JobContext, toError } from '@admin-jobs/sdk'
import type { Sql } from 'postgres'

/** A ledger row of jobs.billing_changes, as the notices read it. */
interface ChangeRow {
  id: string
  changed_at: Date
  entity: 'license' | 'subscription'
  entity_id: string
  action: string
  customer: string
  contact_email: string | null
  before: Record<string, any>
  after: Record<string, any>
  notice_attempts: number
}

/** Notices older than this are not sent any more (a week-old "your license expired" helps nobody). */
const maxAgeDays = 7
/** A customer notice is given up after this many failed attempts. */
const maxAttempts = 5

type NoticeContext = Pick<JobContext<unknown>, 'sql' | 'log' | 'mail' | 'slack' | 'config' | 'dryRun' | 'now'>

/** What sendCustomerNotices did. */
export interface NoticeResult {
  sent: number
  failed: number
  skipped: number
  pending: number
}

/** The customer-facing email of one change. */
export function customerNotice(change: Pick<ChangeRow, 'entity' | 'action' | 'customer' | 'before'>): {
  subject: string
  text: string
} {
  const b = change.before
  if (change.entity === 'license') {
    return {
      subject: `Your ${b.product} license has expired`,
      text: [
        `Hello ${change.customer},`,
        '',
        `Your ${b.product} license (${b.seats} seats) expired on ${new Date(b.expires_at).toISOString().slice(0, 10)}.`,
        'Please contact us to renew it.',
      ].join('\n'),
    }
  }
  const end = new Date(b.current_period_end).toISOString().slice(0, 10)
  if (change.action === 'subscription.canceled') {
    return {
      subject: `Your ${b.plan} subscription has been canceled`,
      text: [
        `Hello ${change.customer},`,
        '',
        `As requested, your ${b.plan} subscription was canceled at the end of its period (${end}).`,
      ].join('\n'),
    }
  }
  return {
    subject: `Your ${b.plan} subscription has expired`,
    text: [
      `Hello ${change.customer},`,
      '',
      b.status === 'trialing'
        ? `Your ${b.plan} trial ended on ${end} and has expired.`
        : `Your ${b.plan} subscription has expired: its payment was overdue since ${end}.`,
      'Please contact us to reactivate it.',
    ].join('\n'),
  }
}

/**
 * Sends the pending customer notices of jobs.billing_changes (each at most once; failures are retried by later runs,
 * up to 5 attempts within 7 days). Without SMTP_URL the notices are marked skipped. A dry run only counts them.
 */
export async function sendCustomerNotices(ctx: NoticeContext): Promise<NoticeResult> {
  const { sql, log } = ctx
  const rows = await pendingNotices(sql, ctx.now())
  const result: NoticeResult = { sent: 0, failed: 0, skipped: 0, pending: rows.length }
  if (ctx.dryRun) return result
  for (const row of rows) {
    if (!ctx.config.smtpUrl) {
      await sql`
        update jobs.billing_changes set notice_status = 'skipped', notice_error = 'SMTP_URL is not set' where id = ${row.id}`
      result.skipped++
      continue
    }
    const notice = customerNotice(row)
    try {
      await ctx.mail({ to: row.contact_email!, ...notice })
      await sql`
        update jobs.billing_changes
        set notice_status = 'sent', notice_sent_at = now(), notice_attempts = notice_attempts + 1, notice_error = null
        where id = ${row.id}`
      result.sent++
    } catch (err) {
      const reason = firstLine(toError(err))
      await sql`
        update jobs.billing_changes
        set notice_status = 'failed', notice_attempts = notice_attempts + 1, notice_error = ${reason}
        where id = ${row.id}`
      log.warn('customer notice failed; the next run tries again', { change: row.id, reason })
      result.failed++
    }
  }
  if (result.skipped) log.warn('SMTP_URL is not set: customer notices were not sent', { skipped: result.skipped })
  return result
}

function pendingNotices(sql: Sql, now: Date) {
  return sql<ChangeRow[]>`
    select id, changed_at, entity, entity_id, action, customer, contact_email, before, after, notice_attempts
    from jobs.billing_changes
    where notice_status in ('pending', 'failed') and notice_attempts < ${maxAttempts}
      and contact_email is not null
      and changed_at > ${now}::timestamptz - make_interval(days => ${maxAgeDays})
    order by id`
}

/** Renders the admins' digest of changes (plain text, one line per change). */
export function renderDigest(
  changes: readonly Pick<ChangeRow, 'entity' | 'entity_id' | 'action' | 'customer' | 'before' | 'contact_email'>[],
): string {
  const lines = changes.map((c) => {
    const what =
      c.entity === 'license'
        ? `license ${c.entity_id} (${c.before.product})`
        : `subscription ${c.entity_id} (${c.before.plan})`
    return `- ${c.action}: ${what} of ${c.customer}, was ${c.before.status}${c.contact_email ? '' : ' (no contact email)'}`
  })
  return [`${changes.length} billing change${changes.length === 1 ? '' : 's'}:`, '', ...lines].join('\n')
}

/**
 * Sends one digest of the changes not yet digested to the admins, by email (ALERT_EMAIL_TO) and Slack, whichever are
 * configured; marks them digested once a channel took it (or when no channel is configured). Throws when every
 * configured channel failed, leaving them for the next run.
 */
export async function sendAdminDigest(ctx: NoticeContext): Promise<{ changes: number; delivered: string[] }> {
  const { sql, log, config } = ctx
  const rows = await sql<ChangeRow[]>`
    select id, changed_at, entity, entity_id, action, customer, contact_email, before, after, notice_attempts
    from jobs.billing_changes
    where digest_sent_at is null and changed_at > ${ctx.now()}::timestamptz - make_interval(days => ${maxAgeDays})
    order by id`
  if (rows.length === 0 || ctx.dryRun) return { changes: rows.length, delivered: [] }
  const text = renderDigest(rows)
  const subject = `Billing: ${rows.length} license/subscription change${rows.length === 1 ? '' : 's'}`
  const delivered: string[] = []
  const failures: Error[] = []
  const channels: [string, () => Promise<void>][] = []
  if (config.smtpUrl && config.alertEmailTo.length > 0) channels.push(['email', () => ctx.mail({ subject, text })])
  if (config.slackWebhookUrl) channels.push(['slack', () => ctx.slack({ text: `*${subject}*\n${text}` })])
  for (const [name, send] of channels) {
    try {
      await send()
      delivered.push(name)
    } catch (err) {
      failures.push(toError(err))
      log.warn(`digest to admins by ${name} failed`, { reason: firstLine(toError(err)) })
    }
  }
  if (channels.length > 0 && delivered.length === 0) {
    throw new Error(`the admins' billing digest could not be delivered (${channels.map(([n]) => n).join(', ')})`, {
      cause: failures[0],
    })
  }
  if (channels.length === 0)
    log.info('no admin channel configured (SMTP_URL + ALERT_EMAIL_TO, SLACK_WEBHOOK_URL): digest logged only', { text })
  const ids = rows.map((r) => r.id)
  await sql`update jobs.billing_changes set digest_sent_at = now() where id in ${sql(ids)}`
  return { changes: rows.length, delivered }
}
