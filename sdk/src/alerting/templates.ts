import { escapeHtml } from '../text/escape.ts'
import type { SlackMessage } from './channels.ts'

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
const colors = { critical: '#b42318', warning: '#b54708', info: '#175cd3', recovery: '#067647' } as const

/** `31 Dec 2026, 10:29 UTC`: a time as people read it in a notice. */
export function humanTime(at: Date): string {
  const day = at.toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' })
  return `${day}, ${at.toISOString().slice(11, 16)} UTC`
}

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
  const text = [
    title,
    '',
    notice.text,
    '',
    ...facts.map(([k, v]) => `${k}: ${v}`),
    ...(notice.runUrl ? ['', `Run: ${notice.runUrl}`] : []),
  ].join('\n')
  const color = notice.kind === 'recovery' ? colors.recovery : colors[notice.severity]
  const html = [
    '<!doctype html><html><body style="margin:0;padding:24px;background:#f6f7f9;font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#101828">',
    `<div style="max-width:600px;margin:0 auto;background:#fff;border-radius:8px;border-top:4px solid ${color};padding:20px 24px">`,
    `<p style="margin:0 0 4px;font-size:12px;letter-spacing:.04em;text-transform:uppercase;color:${color}">${escapeHtml(tag)}</p>`,
    `<h1 style="margin:0 0 12px;font-size:18px">${escapeHtml(title)}</h1>`,
    `<p style="margin:0 0 16px;white-space:pre-wrap">${escapeHtml(notice.text)}</p>`,
    '<table style="border-collapse:collapse;font-size:14px">',
    ...facts.map(
      ([k, v]) =>
        `<tr><td style="padding:2px 12px 2px 0;color:#667085">${escapeHtml(k)}</td><td style="padding:2px 0">${escapeHtml(v)}</td></tr>`,
    ),
    '</table>',
    notice.runUrl
      ? `<p style="margin:16px 0 0"><a href="${escapeHtml(notice.runUrl)}" style="color:#175cd3">View the run</a></p>`
      : '',
    '</div></body></html>',
  ].join('')
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
