import type { SlackMessage } from './channels.ts'
import { humanTime, renderEmail } from './email.ts'

/** How urgent an alert is; `info` alerts are recorded but only reach people through reports. */
export type Severity = 'critical' | 'warning' | 'info'

/** Extra facts shown under an alert (`job`, `target`, `consecutive failures` …); undefined values are left out. */
export type AlertFields = Readonly<Record<string, string | number | undefined>>

/** What a notice about an incident says; `kind` is the moment in its life. */
export interface IncidentNotice {
  kind: 'alert' | 'reminder' | 'recovery'
  severity: Severity
  title: string
  text: string
  fields?: AlertFields
  /** When it was seen. */
  at: Date
  /** The deployment it concerns (ADMIN_JOBS_ENVIRONMENT, or the host). */
  where: string
  job?: string
  runUrl?: string
}

/** A rendered message: the email subject, text and HTML parts and the Slack post. */
export interface RenderedMessage {
  subject: string
  text: string
  html: string
  slack: SlackMessage
}

const icons = { critical: ':rotating_light:', warning: ':warning:', info: ':information_source:' } as const

/** Renders an alert, reminder or recovery for email (text and HTML) and Slack: what, when, where, and the run. */
export function renderIncidentNotice(notice: IncidentNotice): RenderedMessage {
  const title = notice.kind === 'reminder' ? `Still failing: ${notice.title}` : notice.title
  const tag = notice.kind === 'recovery' ? 'resolved' : notice.severity
  const facts: [string, string][] = [
    ['when', humanTime(notice.at)],
    ['where', notice.where],
    ...(notice.job ? [['job', notice.job] as [string, string]] : []),
    ...Object.entries(notice.fields ?? {})
      .filter(([k, v]) => v !== undefined && k !== 'job')
      .map(([k, v]) => [k, String(v)] as [string, string]),
  ]
  const { text, html } = renderEmail({
    title,
    tag: notice.kind === 'reminder' ? `${notice.severity} · reminder` : tag,
    tone: notice.kind === 'recovery' ? 'ok' : notice.severity,
    blocks: [
      { type: 'text', text: notice.text },
      { type: 'facts', rows: facts },
      ...(notice.runUrl ? [{ type: 'link' as const, href: notice.runUrl, label: 'View the run' }] : []),
    ],
    footer: `Sent by admin-jobs on ${notice.where}${notice.job ? ` for ${notice.job}` : ''}.`,
  })
  const icon = notice.kind === 'recovery' ? ':white_check_mark:' : icons[notice.severity]
  const slack: SlackMessage = {
    text: `${icon} ${title}`,
    blocks: [
      {
        type: 'section',
        text: { type: 'mrkdwn', text: `${icon} *${slackEscape(title)}*\n${slackEscape(notice.text)}` },
      },
      {
        type: 'section',
        fields: facts
          .slice(0, 10)
          .map(([k, v]) => ({ type: 'mrkdwn', text: `*${slackEscape(k)}*\n${slackEscape(v)}` })),
      },
      ...(notice.runUrl
        ? [{ type: 'context', elements: [{ type: 'mrkdwn', text: `<${notice.runUrl}|View run>` }] }]
        : []),
    ],
  }
  return { subject: `[${tag}] ${title}`, text, html, slack }
}

/** Escapes the three characters Slack's mrkdwn treats as control characters. */
export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
