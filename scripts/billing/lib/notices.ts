import { type JobContext, type NotifyResult, singleAddress, whyNotAnAddress } from '@admin-jobs/sdk'
import { type EmailBlock, humanDate, renderEmail } from '@admin-jobs/sdk/email'
import { messageByKey } from '@admin-jobs/sdk/platform'
import type { TransactionSql } from 'postgres'

/** A row of jobs.billing_changes, as the notices read it. */
export interface ChangeRow {
  id: string
  changed_at: Date
  entity: 'license' | 'subscription'
  entity_id: string
  action: string
  customer: string
  contact_email: string | null
  before: Record<string, any>
  after: Record<string, any>
}

/** Notices older than this are not queued any more (a week-old "your license expired" helps nobody). */
const maxAgeDays = 7

type NoticeContext = Pick<JobContext<unknown>, 'sql' | 'log' | 'notify' | 'dryRun' | 'now' | 'config'>

/** The outbox key of a change's customer notice: queued once, however often a run or a retry asks. */
export function noticeKey(changeId: string | number): string {
  return `billing/licenses:notice:${changeId}`
}

/** The customer-facing email of one change: subject, text and HTML parts. */
export function customerNotice(change: Pick<ChangeRow, 'entity' | 'action' | 'customer' | 'before'>): {
  subject: string
  text: string
  html: string
} {
  const b = change.before
  const email = (subject: string, tag: string, lines: string[], facts: [string, string][]) => {
    const blocks: EmailBlock[] = [
      { type: 'text', text: `Hello ${change.customer},` },
      ...lines.map((text): EmailBlock => ({ type: 'text', text })),
      { type: 'facts', rows: facts },
    ]
    return { subject, ...renderEmail({ title: subject, tag, tone: 'warning', blocks }) }
  }
  if (change.entity === 'license') {
    const expired = humanDate(new Date(b.expires_at))
    return email(
      `Your ${b.product} license has expired`,
      'license',
      [`Your ${b.product} license (${b.seats} seats) expired on ${expired}.`, 'Please contact us to renew it.'],
      [
        ['product', String(b.product)],
        ['seats', String(b.seats)],
        ['expired', expired],
      ],
    )
  }
  const end = humanDate(new Date(b.current_period_end))
  const facts: [string, string][] = [
    ['plan', String(b.plan)],
    ['period end', end],
  ]
  if (change.action === 'subscription.canceled') {
    return email(
      `Your ${b.plan} subscription has been canceled`,
      'subscription',
      [`As requested, your ${b.plan} subscription was canceled at the end of its period (${end}).`],
      facts,
    )
  }
  return email(
    `Your ${b.plan} subscription has expired`,
    'subscription',
    [
      b.status === 'trialing'
        ? `Your ${b.plan} trial ended on ${end} and has expired.`
        : `Your ${b.plan} subscription has expired: its payment was overdue since ${end}.`,
      'Please contact us to reactivate it.',
    ],
    facts,
  )
}

/**
 * Queues the customer notice of a change to its `contact_email`, in `tx` (the transaction that records the change),
 * and links it to the change. A contact that is not exactly one address is refused by the outbox (kept with the
 * reason, sent nowhere). Returns what the outbox made of it.
 */
export async function queueCustomerNotice(
  tx: TransactionSql,
  notify: JobContext['notify'],
  change: Pick<ChangeRow, 'id' | 'entity' | 'action' | 'customer' | 'before' | 'contact_email'>,
): Promise<NotifyResult> {
  const result = await notify(
    { kind: 'billing-notice', key: noticeKey(change.id), to: change.contact_email, ...customerNotice(change) },
    tx,
  )
  const id = result.id ?? (await messageByKey(tx, noticeKey(change.id)))?.id
  if (id !== undefined) await tx`update jobs.billing_changes set notice_message_id = ${id} where id = ${change.id}`
  return result
}

/** What queueLeftoverNotices found (`due`) and did: queued for a channel, refused (not one address). */
export interface LeftoverResult {
  due: number
  queued: number
  refused: number
}

/**
 * Queues the notices of changes that have a contact but no notice yet (recorded before notices moved to the
 * outbox, within the last 7 days), each in its own transaction. A change made by this job gets its notice in the
 * change's own transaction, so this finds nothing then. A dry run only counts them.
 */
export async function queueLeftoverNotices(ctx: NoticeContext): Promise<LeftoverResult> {
  const { sql } = ctx
  const since = new Date(ctx.now().getTime() - maxAgeDays * 86_400_000)
  const rows = await sql<ChangeRow[]>`
    select id, changed_at, entity, entity_id, action, customer, contact_email, before, after
    from jobs.billing_changes
    where notice_message_id is null and btrim(contact_email) <> '' and changed_at > ${since}
    order by id`
  const result: LeftoverResult = { due: rows.length, queued: 0, refused: 0 }
  if (ctx.dryRun || rows.length === 0) return result
  for (const row of rows) {
    const notice = await sql.begin(async (tx) => {
      const [still] = await tx`
        select 1 from jobs.billing_changes where id = ${row.id} and notice_message_id is null for update`
      return still ? queueCustomerNotice(tx, ctx.notify, row) : undefined
    })
    if (notice?.queued) result.queued++
    if (notice?.refused) result.refused++
  }
  ctx.log.info('queued the customer notices of earlier changes', { notices: rows.length })
  return result
}

/** The admins' digest of changes: one line per change (for Slack), and the email's text and HTML parts. */
export function renderDigest(
  changes: readonly Pick<ChangeRow, 'entity' | 'entity_id' | 'action' | 'customer' | 'before' | 'contact_email'>[],
  where = 'admin-jobs',
): { lines: string[]; text: string; html: string } {
  const lines = changes.map((c) => {
    const what =
      c.entity === 'license'
        ? `license ${c.entity_id} (${c.before.product})`
        : `subscription ${c.entity_id} (${c.before.plan})`
    // The contact itself is never echoed: a refused one may hold anything (a list, a header).
    const contact = !c.contact_email?.trim()
      ? ' (no contact email)'
      : singleAddress(c.contact_email)
        ? ''
        : ` (customer notice refused: ${whyNotAnAddress(c.contact_email)})`
    return `${c.action}: ${what} of ${c.customer}, was ${c.before.status}${contact}`
  })
  const title = `${changes.length} billing change${changes.length === 1 ? '' : 's'}`
  const { text, html } = renderEmail({
    title,
    tag: 'billing',
    tone: 'info',
    blocks: [
      {
        type: 'text',
        text: 'Licenses and subscriptions changed by billing/licenses; each customer with one contact address was notified.',
      },
      {
        type: 'list',
        items: lines.map((text, i) => ({
          text,
          tone: changes[i]!.action.endsWith('.expired') ? 'warning' : 'neutral',
        })),
      },
    ],
    footer: `Sent by admin-jobs on ${where} (billing/licenses).`,
  })
  return { lines, text, html }
}

/**
 * Queues one digest to the admins (ALERT_EMAIL_TO, and Slack) of the changes of the last 7 days no digest listed yet,
 * and marks them listed in the same transaction: a run that dies before leaves them to the next run's digest, and no
 * change is listed twice. A dry run only counts them.
 */
export async function queueAdminDigest(ctx: NoticeContext): Promise<{ changes: number; queued: boolean }> {
  const { sql } = ctx
  const since = new Date(ctx.now().getTime() - maxAgeDays * 86_400_000)
  const undigested = (q: typeof sql | TransactionSql, lock: boolean) => q<ChangeRow[]>`
    select id, changed_at, entity, entity_id, action, customer, contact_email, before, after
    from jobs.billing_changes
    where digest_message_id is null and changed_at > ${since}
    order by id ${lock ? q`for update` : q``}`
  if (ctx.dryRun) return { changes: (await undigested(sql, false)).length, queued: false }
  return sql.begin(async (tx) => {
    const rows = await undigested(tx, true)
    if (rows.length === 0) return { changes: 0, queued: false }
    const subject = `Billing: ${rows.length} license/subscription change${rows.length === 1 ? '' : 's'}`
    const { lines, text, html } = renderDigest(rows, ctx.config.environment)
    const key = `billing/licenses:digest:${rows[0]!.id}-${rows.at(-1)!.id}`
    const slack = { text: `*${subject}*\n${lines.map((l) => `- ${l}`).join('\n')}` }
    const result = await ctx.notify({ kind: 'billing-digest', key, subject, text, html, slack }, tx)
    const id = result.id ?? (await messageByKey(tx, key))?.id ?? null
    await tx`update jobs.billing_changes set digest_message_id = ${id} where id in ${tx(rows.map((r) => r.id))}`
    return { changes: rows.length, queued: result.queued }
  }) as Promise<{ changes: number; queued: boolean }>
}
