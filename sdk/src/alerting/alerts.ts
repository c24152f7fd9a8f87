import type { Sql } from 'postgres'
import type { Config } from '../config/config.ts'
import { createMasker } from '../config/redact.ts'
import type { Logger } from '../runtime/log.ts'
import { type Duration, formatMs, toMs } from '../text/duration.ts'
import { sendEmail } from './email.ts'
import { sendSlack } from './slack.ts'

/** How urgent an alert is; `info` alerts are recorded but only reach people through reports. */
export type Severity = 'critical' | 'warning' | 'info'

/** One alert. With a dedupeKey, only the first alert of an incident is sent (plus reminders after `remindAfter`). */
export interface AlertInput {
  severity: Severity
  title: string
  text: string
  fields?: Readonly<Record<string, string | number | undefined>>
  dedupeKey?: string
  remindAfter?: Duration
}

/** What happened to an alert: sent (with the channels that took it), or suppressed as a duplicate. */
export interface AlertResult {
  sent: boolean
  kind: 'alert' | 'reminder' | 'recovery' | 'suppressed'
  delivered: string[]
  failed: string[]
}

/** Sends and deduplicates alerts for one job; bound into each job's context. */
export interface Alerter {
  alert(input: AlertInput): Promise<AlertResult>
  /** Closes an open incident and sends one recovery notice naming how long it lasted; no-op when none is open. */
  resolve(dedupeKey: string, notice?: { title?: string; text?: string }): Promise<AlertResult>
  /** Sends and records one notice of the given kind with no dedupe of its own (the alert policy decided it is due). */
  notify(kind: 'alert' | 'reminder' | 'recovery', input: AlertInput): Promise<AlertResult>
}

/** Options of createAlerter; `dryRun` records nothing and sends nothing. */
export interface AlerterOptions {
  sql: Sql
  config: Config
  log: Logger
  job?: string
  runUrl?: string
  dryRun?: boolean
}

const none: AlertResult = { sent: false, kind: 'suppressed', delivered: [], failed: [] }

/** Channel names configured in `config` (slack, email). */
export function configuredChannels(config: Config): string[] {
  const channels: string[] = []
  if (config.slackWebhookUrl) channels.push('slack')
  if (config.smtpUrl && config.alertEmailTo.length > 0) channels.push('email')
  return channels
}

/**
 * Sends one notice on every channel at once. A channel that fails is logged and listed in `failed`, never thrown: the
 * caller (and the alert policy, which sends again when nobody was told) reads the lists.
 */
export async function sendToChannels(
  channels: readonly string[],
  log: Logger,
  title: string,
  send: (channel: string) => Promise<void>,
): Promise<{ delivered: string[]; failed: string[] }> {
  const delivered: string[] = []
  const failed: string[] = []
  await Promise.all(
    channels.map(async (channel) => {
      try {
        await send(channel)
        delivered.push(channel)
      } catch (err) {
        failed.push(channel)
        log.warn(`alert channel ${channel} failed`, { title, error: err as Error, reason: (err as Error).message })
      }
    }),
  )
  return { delivered, failed }
}

const icons: Record<Severity | 'recovery', string> = {
  critical: ':rotating_light:',
  warning: ':warning:',
  info: ':information_source:',
  recovery: ':white_check_mark:',
}

/** Renders an alert as plain text lines (title, text, fields, run link). */
export function renderAlertText(
  input: { title: string; text: string; fields?: AlertInput['fields'] },
  runUrl?: string,
) {
  const lines = [input.title, '', input.text]
  const fields = Object.entries(input.fields ?? {}).filter(([, v]) => v !== undefined)
  if (fields.length) lines.push('', ...fields.map(([k, v]) => `${k}: ${v}`))
  if (runUrl) lines.push('', `Run: ${runUrl}`)
  return lines.join('\n')
}

/** Creates the alerter: delivery to every configured channel (a failing channel is logged, never thrown). */
export function createAlerter(options: AlerterOptions): Alerter {
  const { sql, config, log } = options
  const channels = configuredChannels(config)
  const mask = createMasker(config.secrets)

  const deliver = async (
    kind: AlertResult['kind'],
    severity: Severity,
    unmasked: { title: string; text: string; fields?: AlertInput['fields']; dedupeKey?: string },
  ): Promise<AlertResult> => {
    // Alerts leave the process by mail and Slack, where no masking applies: an error quoting a secret stays secret.
    const input = {
      ...unmasked,
      title: mask(unmasked.title),
      text: mask(unmasked.text),
      fields: unmasked.fields
        ? Object.fromEntries(Object.entries(unmasked.fields).map(([k, v]) => [k, typeof v === 'string' ? mask(v) : v]))
        : undefined,
    }
    const icon = kind === 'recovery' ? icons.recovery : icons[severity]
    const prefix = kind === 'reminder' ? 'Still failing: ' : ''
    const title = `${prefix}${input.title}`
    const body = renderAlertText({ ...input, title }, options.runUrl)
    if (options.dryRun) {
      log.info('dry run: would send alert', { kind, severity, title, channels: channels.join(',') || 'log' })
      return { sent: false, kind, delivered: [], failed: [] }
    }
    if (channels.length === 0) log.warn(`alert (no channel configured): ${title}`, { severity, text: input.text })
    const { delivered, failed } = await sendToChannels(channels, log, title, (channel) =>
      channel === 'slack'
        ? sendSlack(config, {
            text: `${icon} ${title}`,
            blocks: [
              { type: 'section', text: { type: 'mrkdwn', text: `${icon} *${title}*\n${input.text}` } },
              ...fieldBlocks(input.fields),
              ...(options.runUrl
                ? [{ type: 'context', elements: [{ type: 'mrkdwn', text: `<${options.runUrl}|View run>` }] }]
                : []),
            ],
          })
        : sendEmail(config, { subject: `[${kind === 'recovery' ? 'resolved' : severity}] ${title}`, text: body }),
    )
    await sql`
      insert into jobs.alerts (job, dedupe_key, kind, severity, title, text, channels, delivered)
      values (${options.job ?? null}, ${input.dedupeKey ?? null}, ${kind}, ${severity}, ${title}, ${input.text},
              ${channels}, ${delivered})`.catch((err) => log.warn('could not record alert', { error: err }))
    return { sent: delivered.length > 0, kind, delivered, failed }
  }

  return {
    async alert(input) {
      if (!input.dedupeKey) return deliver('alert', input.severity, input)
      if (options.dryRun) {
        const [open] =
          await sql`select 1 from jobs.alert_state where dedupe_key = ${input.dedupeKey} and status = 'open'`
        return open ? none : deliver('alert', input.severity, input)
      }
      // Open (or reopen) the incident, then claim the right to send atomically so concurrent runs send once.
      await sql`
        insert into jobs.alert_state as s (dedupe_key, status, severity, title)
        values (${input.dedupeKey}, 'open', ${input.severity}, ${input.title})
        on conflict (dedupe_key) do update set
          status = 'open',
          severity = excluded.severity,
          title = excluded.title,
          last_seen_at = now(),
          resolved_at = null,
          opened_at = case when s.status = 'resolved' then now() else s.opened_at end,
          occurrences = case when s.status = 'resolved' then 1 else s.occurrences + 1 end,
          last_sent_at = case when s.status = 'resolved' then null else s.last_sent_at end,
          sends = case when s.status = 'resolved' then 0 else s.sends end`
      const remindMs = input.remindAfter === undefined ? null : toMs(input.remindAfter)
      const [claim] = await sql<{ sends: number }[]>`
        update jobs.alert_state set last_sent_at = now(), sends = sends + 1
        where dedupe_key = ${input.dedupeKey} and status = 'open'
          and (last_sent_at is null
               or (${remindMs}::float8 is not null and last_sent_at <= now() - make_interval(secs => ${remindMs}::float8 / 1000)))
        returning sends`
      if (!claim) {
        log.info('alert suppressed (incident already notified)', { dedupeKey: input.dedupeKey })
        return none
      }
      const result = await deliver(claim.sends === 1 ? 'alert' : 'reminder', input.severity, input)
      if (result.failed.length > 0 && result.delivered.length === 0) {
        // Nobody was told (every channel failed): give the claim back so the next occurrence tries again.
        await sql`
          update jobs.alert_state set sends = greatest(sends - 1, 0), last_sent_at = null
          where dedupe_key = ${input.dedupeKey} and status = 'open'`
      }
      return result
    },
    async resolve(dedupeKey, notice) {
      if (options.dryRun) return none
      const [row] = await sql<{ title: string; severity: Severity; opened_at: Date; sends: number }[]>`
        update jobs.alert_state set status = 'resolved', resolved_at = now()
        where dedupe_key = ${dedupeKey} and status = 'open'
        returning title, severity, opened_at, sends`
      if (!row) return none
      // An incident nobody was told about needs no recovery notice.
      if (row.sends === 0) return none
      const lasted = formatMs(Date.now() - row.opened_at.getTime())
      return deliver('recovery', row.severity, {
        title: notice?.title ?? `Resolved: ${row.title}`,
        text: notice?.text ?? `Back to normal after ${lasted}.`,
        fields: { 'open for': lasted },
        dedupeKey,
      })
    },
    notify: (kind, input) => deliver(kind, input.severity, input),
  }
}

function fieldBlocks(fields: AlertInput['fields']): unknown[] {
  const entries = Object.entries(fields ?? {}).filter(([, v]) => v !== undefined)
  if (!entries.length) return []
  return [
    {
      type: 'section',
      fields: entries.slice(0, 10).map(([k, v]) => ({ type: 'mrkdwn', text: `*${k}*\n${v}` })),
    },
  ]
}
