import type { Notice, SlackMessage } from '@admin-jobs/sdk'
import { formatChange, type ReportDocument } from './document.ts'
import type { Period } from './period.ts'
import { renderHtml, renderText } from './render.ts'

const chartCid = 'chart@admin-jobs'

/** The idempotency key of a period's report in the outbox: `report:daily:2026-11-27`. */
export function reportKey(period: Pick<Period, 'kind' | 'key'>): string {
  return `report:${period.kind}:${period.key}`
}

/**
 * The report as one notice to the admins: the email (HTML with the chart inline as a `cid:` PNG, a text part, the
 * CSV attached) and the Slack post.
 */
export function reportNotice(
  doc: ReportDocument,
  options: { png?: Buffer; csv: string; runUrl?: string },
): Omit<Notice, 'kind' | 'key'> {
  const { png, csv, runUrl } = options
  const base = `${doc.bounds.kind}-${doc.bounds.key}`
  return {
    subject: `${doc.title}: ${doc.periodLabel}`,
    text: renderText(doc, { runUrl }),
    html: renderHtml(doc, { chartCid: png ? chartCid : undefined, runUrl }),
    slack: slackMessage(doc, runUrl),
    attachments: [
      ...(png ? [{ filename: `${base}.png`, content: png, contentType: 'image/png', cid: chartCid }] : []),
      { filename: `${base}.csv`, content: Buffer.from(csv), contentType: 'text/csv; charset=utf-8' },
    ],
  }
}

/** The Slack message: title, headline numbers (with changes), findings count, run link. */
export function slackMessage(doc: ReportDocument, runUrl: string | undefined): SlackMessage {
  const figure = (m: ReportDocument['headline'][number]) =>
    `${m.value.toLocaleString('en-US')}${m.previous !== undefined ? ` (${formatChange(m.value, m.previous)})` : ''}`
  const title = `${doc.title}: ${doc.periodLabel}`
  const text = [
    title,
    ...doc.headline.map((m) => `${m.label}: ${figure(m)}`),
    ...(runUrl ? [`Run: ${runUrl}`] : []),
  ].join('\n')
  const context = [
    `Period ${doc.bounds.start} to ${doc.bounds.end} (exclusive), ${doc.bounds.timezone}`,
    ...(doc.findings ? [`${doc.findings.length} finding(s) need action`] : []),
    ...(runUrl ? [`<${runUrl}|Run>`] : []),
  ]
  return {
    text,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: title.slice(0, 150) } },
      {
        type: 'section',
        fields: doc.headline.slice(0, 10).map((m) => ({ type: 'mrkdwn', text: `*${m.label}*\n${figure(m)}` })),
      },
      { type: 'context', elements: [{ type: 'mrkdwn', text: context.join(' · ') }] },
    ],
  }
}
