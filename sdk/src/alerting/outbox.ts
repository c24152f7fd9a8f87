import { randomUUID } from 'node:crypto'
import type { Sql, TransactionSql } from 'postgres'
import type { Config } from '../config/config.ts'
import { untilStopped } from '../runtime/deadline.ts'
import type { Logger } from '../runtime/log.ts'
import { backoffDelay, sleep } from '../runtime/retry.ts'
import type { channelTimeouts, DeliveryError, EmailChannel, EmailMessage, SlackMessage } from './channels.ts'

/** Something that runs queries: a pool or an open transaction. */
export type Queries = Sql | TransactionSql

/** Where a message goes: email to exactly these recipients, or the Slack webhook. */
export type Route = { channel: 'email'; recipients: readonly string[] } | { channel: 'slack' }

/** A message to queue. `key` makes queueing idempotent: a second message with the same key is not queued. */
export interface OutboundMessage {
  kind: string
  key?: string
  job?: string
  runId?: number
  incidentKey?: string
  severity?: string
  /** The headline without a tag (default: the subject). */
  title?: string
  subject: string
  text: string
  html?: string
  slack?: SlackMessage
  attachments?: readonly { filename: string; contentType?: string; cid?: string; base64: string }[]
}

/** A route a message could not take, recorded as `refused` with the reason (a recipient that is not one address). */
export interface RefusedRoute {
  channel: 'email'
  reason: string
}

/** The result of queueing: the message's id, or undefined when one with the same key was queued before. */
export interface Queued {
  id: number | undefined
}

/**
 * Queues `message` for every route, in the caller's transaction (so it commits with the decision that made it).
 * Each email carries a Message-ID fixed now, so a repeat after a crash is recognisable as the same message.
 */
export async function enqueue(
  sql: Queries,
  message: OutboundMessage,
  routes: readonly Route[],
  options: { from: string; refused?: readonly RefusedRoute[] },
): Promise<Queued> {
  const messageId = `<${randomUUID()}@${domainOf(options.from)}>`
  const [row] = await sql<{ id: string }[]>`
    insert into jobs.messages (job, run_id, kind, key, incident_key, severity, title, subject, text, html, slack, attachments, message_id)
    values (${message.job ?? null}, ${message.runId ?? null}, ${message.kind}, ${message.key ?? null},
            ${message.incidentKey ?? null}, ${message.severity ?? null}, ${message.title ?? message.subject}, ${message.subject}, ${message.text},
            ${message.html ?? null}, ${message.slack ? sql.json(message.slack as never) : null},
            ${message.attachments ? sql.json(message.attachments as never) : null}, ${messageId})
    on conflict (key) do nothing
    returning id`
  if (!row) return { id: undefined }
  const id = Number(row.id)
  for (const route of routes) {
    const recipients = route.channel === 'email' ? [...route.recipients] : []
    await sql`insert into jobs.deliveries (message_id, channel, recipients) values (${id}, ${route.channel}, ${recipients})`
  }
  for (const refused of options.refused ?? []) {
    await sql`
      insert into jobs.deliveries (message_id, channel, status, last_error)
      values (${id}, ${refused.channel}, 'refused', ${refused.reason})`
  }
  return { id }
}

function domainOf(address: string): string {
  return /@([^>\s]+)>?$/.exec(address)?.[1] ?? 'localhost'
}

/** The routes of a notice to the admins: ALERT_EMAIL_TO when SMTP_URL is set, and Slack when its webhook is. */
export function adminRoutes(config: Pick<Config, 'smtpUrl' | 'alertEmailTo' | 'slackWebhookUrl'>): Route[] {
  const routes: Route[] = []
  if (config.smtpUrl && config.alertEmailTo.length > 0)
    routes.push({ channel: 'email', recipients: config.alertEmailTo })
  if (config.slackWebhookUrl) routes.push({ channel: 'slack' })
  return routes
}

/** Bounds of one delivery round; defaults: 20 s in all, 100 messages, a 2-minute lease, give up after 24 h. */
export interface DeliveryOptions {
  config: Config
  log: Logger
  budgetMs?: number
  limit?: number
  leaseMs?: number
  giveUpAfterMs?: number
  /** Channel timeouts (default channelTimeouts). */
  timeouts?: Partial<typeof channelTimeouts>
  /**
   * Ends the round when it aborts (the run was stopped): the message being sent and those not yet tried are handed
   * back at once, so the next run sends them (again, if the channel had already accepted one: at most one repeat).
   */
  signal?: AbortSignal
}

/** What one delivery round did, per channel. */
export interface DeliveryReport {
  sent: number
  retrying: number
  failed: number
  /** Channels that stalled or refused connections this round: their remaining messages wait for the next round. */
  skipped: string[]
}

interface DueRow {
  message_id: string
  channel: 'email' | 'slack'
  recipients: string[]
  attempts: number
  created_at: Date
  subject: string
  text: string
  html: string | null
  slack: SlackMessage | null
  attachments: OutboundMessage['attachments'] | null
  header_id: string
}

/**
 * Delivers due messages, oldest first: channels side by side (a hanging Slack never delays email), each message
 * once per channel. A claim is a lease: a run that dies mid-send leaves the message to be sent again once the lease
 * expires (at most one repeat per crash). A transient failure waits with backoff; a stalled channel is left for the
 * next round; a message that cannot go (or has failed for 24 h) ends `failed` with the reason.
 */
export async function deliverDue(sql: Sql, options: DeliveryOptions): Promise<DeliveryReport> {
  const until = Date.now() + (options.budgetMs ?? 20_000)
  const leaseMs = options.leaseMs ?? 120_000
  const rows = await sql<DueRow[]>`
    with due as (
      select d.message_id, d.channel from jobs.deliveries d
      where d.status in ('pending', 'sending') and d.next_attempt_at <= now()
        and (d.status = 'pending' or d.lease_until < now())
      order by d.next_attempt_at, d.message_id
      limit ${options.limit ?? 100}
      for update skip locked)
    update jobs.deliveries d set status = 'sending', attempts = d.attempts + 1,
      lease_until = now() + make_interval(secs => ${leaseMs / 1000})
    from due, jobs.messages m
    where d.message_id = due.message_id and d.channel = due.channel and m.id = d.message_id
    returning d.message_id, d.channel, d.recipients, d.attempts, m.created_at, m.subject, m.text, m.html, m.slack,
              m.attachments, m.message_id as header_id`
  const report: DeliveryReport = { sent: 0, retrying: 0, failed: 0, skipped: [] }
  if (rows.length === 0) return report
  const byChannel = new Map<DueRow['channel'], DueRow[]>()
  for (const row of rows) byChannel.set(row.channel, [...(byChannel.get(row.channel) ?? []), row])
  await Promise.all(
    [...byChannel].map(([channel, list]) =>
      deliverChannel(sql, channel, list, { ...options, until, report }).catch((err) =>
        options.log.warn(`delivery over ${channel} failed`, { reason: (err as Error).message }),
      ),
    ),
  )
  return report
}

async function deliverChannel(
  sql: Sql,
  channel: 'email' | 'slack',
  rows: DueRow[],
  options: DeliveryOptions & { until: number; report: DeliveryReport },
) {
  const { log, report } = options
  // The channels (and their mail and Slack clients) load only when there is something to send.
  const channels = await import('./channels.ts')
  let email: EmailChannel | undefined
  try {
    const { signal } = options
    for (const [i, row] of rows.entries()) {
      if (Date.now() > options.until || signal?.aborted) return await release(sql, rows.slice(i))
      try {
        const send = async () => {
          if (channel === 'email') {
            email ??= await channels.openEmail(options.config, options.timeouts)
            await email.send(toEmail(row), row.recipients)
          } else {
            await postSlackWithRetry(
              channels,
              options.config,
              row.slack ?? { text: row.subject },
              options.until,
              options.timeouts?.slackMs,
            )
          }
        }
        await (signal ? untilStopped(send(), signal, 0) : send())
        await sql`
          update jobs.deliveries set status = 'sent', sent_at = now(), lease_until = null, last_error = null
          where message_id = ${row.message_id} and channel = ${channel}`
        report.sent++
      } catch (err) {
        // Stopped mid-send: nothing says the channel took it, so it goes back as it was, for the next run.
        if (signal?.aborted) return await release(sql, rows.slice(i))
        const failure =
          err instanceof channels.DeliveryError ? err : new channels.DeliveryError((err as Error).message, 'transient')
        const tooOld = Date.now() - row.created_at.getTime() > (options.giveUpAfterMs ?? 86_400_000)
        if (failure.kind === 'permanent' || tooOld) {
          await sql`
            update jobs.deliveries set status = 'failed', lease_until = null, last_error = ${failure.message}
            where message_id = ${row.message_id} and channel = ${channel}`
          report.failed++
          log.warn(`message could not be delivered over ${channel}; given up`, {
            subject: row.subject,
            reason: failure.message,
          })
          continue
        }
        const waitMs = backoffDelay(row.attempts, 30_000, 3_600_000)
        await sql`
          update jobs.deliveries set status = 'pending', lease_until = null, last_error = ${failure.message},
            next_attempt_at = now() + make_interval(secs => ${waitMs / 1000})
          where message_id = ${row.message_id} and channel = ${channel}`
        report.retrying++
        log.warn(`${channel} delivery failed; the message stays queued`, {
          subject: row.subject,
          reason: failure.message,
        })
        if (failure.kind === 'stalled' || isConnectionFailure(failure)) {
          // The channel is down or hanging: every further message would wait the same. Leave them for the next round.
          report.skipped.push(channel)
          return await release(sql, rows.slice(i + 1))
        }
      }
    }
  } finally {
    email?.close()
  }
}

/** Slack answers 429/5xx now and then: two quick retries within the round, then the message waits for the next. */
async function postSlackWithRetry(
  channels: typeof import('./channels.ts'),
  config: Config,
  message: SlackMessage,
  until: number,
  timeoutMs?: number,
) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await channels.postSlack(config, message, timeoutMs)
    } catch (err) {
      const delay = backoffDelay(attempt, 500, 2_000)
      if (
        !(err instanceof channels.DeliveryError) ||
        err.kind !== 'transient' ||
        attempt >= 3 ||
        Date.now() + delay > until
      )
        throw err
      await sleep(delay)
    }
  }
}

function isConnectionFailure(error: DeliveryError): boolean {
  const code = (error.cause as { code?: string } | undefined)?.code
  return code === 'ECONNECTION' || code === 'ECONNREFUSED' || code === 'ESOCKET' || code === 'EDNS'
}

/** Hands claimed but untried messages back, uncounted, for the next round. */
async function release(sql: Sql, rows: readonly DueRow[]) {
  for (const row of rows) {
    await sql`
      update jobs.deliveries set status = 'pending', lease_until = null, attempts = greatest(attempts - 1, 0)
      where message_id = ${row.message_id} and channel = ${row.channel} and status = 'sending'`
  }
}

function toEmail(row: DueRow): EmailMessage {
  return {
    subject: row.subject,
    text: row.text,
    html: row.html ?? undefined,
    messageId: row.header_id,
    attachments: row.attachments?.map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      cid: a.cid,
      content: Buffer.from(a.base64, 'base64'),
    })),
  }
}

/** One channel's delivery of a message, as jobs that show what became of their notices read it. */
export interface ChannelDelivery {
  channel: 'email' | 'slack'
  status: 'pending' | 'sending' | 'sent' | 'failed' | 'refused'
  attempts: number
  sentAt: Date | null
  lastError: string | null
}

/** The message queued under `key`, with its deliveries per channel (none: recorded, sent nowhere); undefined if none. */
export async function messageByKey(
  sql: Queries,
  key: string,
): Promise<{ id: number; createdAt: Date; deliveries: ChannelDelivery[] } | undefined> {
  const [message] = await sql<{ id: string; created_at: Date }[]>`
    select id, created_at from jobs.messages where key = ${key}`
  if (!message) return undefined
  const deliveries = await sql<ChannelDelivery[]>`
    select channel, status, attempts, sent_at as "sentAt", last_error as "lastError"
    from jobs.deliveries where message_id = ${message.id} order by channel`
  return { id: Number(message.id), createdAt: message.created_at, deliveries: [...deliveries] }
}

/** Messages not yet delivered on some channel (pending, retrying or given up), newest first, for status pages. */
export async function undelivered(
  sql: Sql,
  limit = 50,
): Promise<
  {
    id: number
    subject: string
    channel: string
    status: string
    attempts: number
    lastError: string | null
    createdAt: Date
  }[]
> {
  const rows = await sql<
    {
      id: string
      subject: string
      channel: string
      status: string
      attempts: number
      last_error: string | null
      created_at: Date
    }[]
  >`
    select m.id, m.subject, d.channel, d.status, d.attempts, d.last_error, m.created_at
    from jobs.deliveries d join jobs.messages m on m.id = d.message_id
    where d.status in ('pending', 'sending', 'failed', 'refused')
    order by m.created_at desc limit ${limit}`
  return rows.map((r) => ({
    id: Number(r.id),
    subject: r.subject,
    channel: r.channel,
    status: r.status,
    attempts: r.attempts,
    lastError: r.last_error,
    createdAt: r.created_at,
  }))
}

/** One alert as reports list it: raised (not a reminder or a recovery) at `createdAt`. */
export interface RaisedAlert {
  createdAt: Date
  job: string | null
  severity: string
  title: string
}

/** Alerts raised in [from, to), oldest first, optionally of one job (info alerts included: they exist for reports). */
export async function alertsBetween(sql: Sql, from: Date, to: Date, job?: string): Promise<RaisedAlert[]> {
  return sql<RaisedAlert[]>`
    select created_at as "createdAt", job, coalesce(severity, 'info') as severity, coalesce(title, subject) as title
    from jobs.messages
    where created_at >= ${from} and created_at < ${to} and kind = 'alert' ${job ? sql`and job = ${job}` : sql``}
    order by created_at, id`
}

/** Alerts raised per local day (`YYYY-MM-DD` in `timezone`) in [from, to), optionally of one job. */
export async function alertsPerDay(
  sql: Sql,
  options: { from: Date; to: Date; timezone: string; job?: string },
): Promise<{ day: string; n: number }[]> {
  const { from, to, timezone, job } = options
  return sql<{ day: string; n: number }[]>`
    select (created_at at time zone ${timezone})::date::text as day, count(*)::int as n from jobs.messages
    where created_at >= ${from} and created_at < ${to} and kind = 'alert' ${job ? sql`and job = ${job}` : sql``}
    group by 1 order by 1`
}
