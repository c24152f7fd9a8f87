import { markdownTable } from '@admin-jobs/sdk'
import { chartSize, renderChartMermaid } from '@admin-jobs/sdk/charts'
import { type EmailBlock, type EmailContent, renderEmail } from '@admin-jobs/sdk/email'
import { formatChange, percentChange, type ReportDocument, type Table } from './document.ts'

const cellText = (v: string | number | null) =>
  v === null ? '–' : typeof v === 'number' ? v.toLocaleString('en-US') : v

const hasPrevious = (doc: ReportDocument) => doc.headline.some((m) => m.previous !== undefined)

const hasNotes = (doc: ReportDocument) => doc.headline.some((m) => m.note !== undefined)

function headlineRows(doc: ReportDocument): string[][] {
  const compare = hasPrevious(doc)
  const notes = hasNotes(doc)
  const head = [
    ...(compare ? ['Metric', 'Value', 'Previous', 'Change'] : ['Metric', 'Value']),
    ...(notes ? ['How counted'] : []),
  ]
  const rows = doc.headline.map((m) => [
    ...(compare && m.previous !== undefined
      ? [m.label, cellText(m.value), cellText(m.previous), formatChange(m.value, m.previous)]
      : compare
        ? [m.label, cellText(m.value), '–', '–']
        : [m.label, cellText(m.value)]),
    ...(notes ? [m.note ?? ''] : []),
  ])
  return [head, ...rows]
}

const tableRows = (t: Table) => [[...t.columns], ...t.rows.map((r) => r.map(cellText))]

/** The report as markdown (job summary, jobs.reports.markdown): headline table, mermaid chart, sections, checklist. */
export function renderMarkdown(doc: ReportDocument, options: { runUrl?: string } = {}): string {
  const out = [
    `## ${doc.title}: ${doc.periodLabel}`,
    '',
    `_Period ${periodLine(doc)}_`,
    '',
    markdownTable(headlineRows(doc)),
  ]
  if (doc.chart) {
    out.push('', renderChartMermaid(doc.chart), '', `_${doc.chart.series.map((s) => s.name).join(' · ')}_`)
  }
  if (doc.findings) out.push('', '### Checklist', '', ...checklistLines(doc).map((l) => `- [ ] ${l}`))
  for (const section of doc.sections) {
    out.push('', `### ${section.title}`, '')
    if (section.note) out.push(section.note, '')
    if (section.table?.rows.length) out.push(markdownTable(tableRows(section.table)))
    else if (section.table || !section.note) out.push(`_${section.empty}_`)
  }
  if (options.runUrl) out.push('', `[Run](${options.runUrl})`)
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n')}\n`
}

function checklistLines(doc: ReportDocument): string[] {
  if (!doc.findings?.length) return ['Nothing needs action.']
  return doc.findings.map((f) => `**${f.severity}**: ${f.text}`)
}

function periodLine(doc: ReportDocument): string {
  const { start, end, timezone } = doc.bounds
  return `${start} to ${end} (exclusive), ${timezone}`
}

/** The report as email content: the same blocks give its HTML and its text part (renderEmail). */
export function reportEmail(doc: ReportDocument, options: { chartCid?: string; runUrl?: string } = {}): EmailContent {
  const [head, ...rows] = headlineRows(doc)
  const numeric = head!.map((_, i) => i).filter((i) => i > 0 && head![i] !== 'How counted' && head![i] !== 'Change')
  const blocks: EmailBlock[] = [
    { type: 'note', text: `Period ${periodLine(doc)}` },
    { type: 'table', columns: head!, rows, numeric },
  ]
  if (doc.chart && options.chartCid) {
    const { width, height } = chartSize(doc.chart)
    blocks.push({ type: 'image', cid: options.chartCid, width, height, alt: doc.chart.title })
  }
  if (doc.findings) {
    blocks.push({ type: 'heading', text: 'Checklist' })
    blocks.push({
      type: 'list',
      items: doc.findings.length
        ? doc.findings.map((f) => ({ tag: f.severity, tone: f.severity, text: f.text }))
        : [{ tone: 'ok', text: 'Nothing needs action.' }],
    })
  }
  for (const section of doc.sections) {
    blocks.push({ type: 'heading', text: section.title })
    if (section.note) blocks.push({ type: 'note', text: section.note })
    if (section.table?.rows.length) {
      const t = section.table
      const numericColumns = t.columns.map((_, i) => i).filter((i) => t.rows.every((r) => typeof r[i] !== 'string'))
      blocks.push({
        type: 'table',
        columns: t.columns,
        rows: t.rows.map((r) => r.map(cellText)),
        numeric: numericColumns,
      })
    } else if (section.table || !section.note) blocks.push({ type: 'note', text: section.empty })
  }
  if (options.runUrl) blocks.push({ type: 'link', href: options.runUrl, label: 'Run' })
  return {
    title: `${doc.title}: ${doc.periodLabel}`,
    tag: `${doc.bounds.kind} report`,
    tone: doc.findings?.some((f) => f.severity === 'critical') ? 'warning' : 'info',
    preview: doc.headline
      .slice(0, 3)
      .map((m) => `${m.label}: ${cellText(m.value)}`)
      .join(' · '),
    blocks,
    footer: `Sent by admin-jobs (reports/${doc.bounds.kind}). The CSV is attached; JSON and markdown are in REPORTS_DIR.`,
  }
}

/** The report as plain text (the email's text part). */
export function renderText(doc: ReportDocument, options: { runUrl?: string } = {}): string {
  return renderEmail(reportEmail(doc, options)).text
}

/**
 * The report as an HTML email, on the shared layout: inline styles and tables only (Gmail and Outlook), the chart as
 * `<img src="cid:…">` (an inline PNG attachment, never SVG or an external image).
 */
export function renderHtml(doc: ReportDocument, options: { chartCid?: string; runUrl?: string } = {}): string {
  return renderEmail(reportEmail(doc, options)).html
}

const csvCell = (v: string | number | null) => {
  const s = v === null ? '' : String(v)
  // Quote separators and neutralise spreadsheet formulas.
  const safe = /^[=+\-@]/.test(s) && typeof v === 'string' ? `'${s}` : s
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe
}

/** The report as CSV: the headline block, then one block per section (title line, header, rows), blank-line separated. */
export function renderCsv(doc: ReportDocument): string {
  const compare = hasPrevious(doc)
  const blocks: (readonly (string | number | null)[])[][] = [
    [
      compare ? ['metric', 'value', 'previous', 'change_percent'] : ['metric', 'value'],
      ...doc.headline.map((m) =>
        compare
          ? [m.key, m.value, m.previous ?? null, m.previous === undefined ? null : changeCell(m.value, m.previous)]
          : [m.key, m.value],
      ),
    ],
  ]
  if (doc.findings)
    blocks.push([['checklist'], ['severity', 'finding'], ...doc.findings.map((f) => [f.severity, f.text])])
  for (const section of doc.sections) {
    blocks.push([[section.title], [...(section.table?.columns ?? [])], ...(section.table?.rows ?? [])])
  }
  return `${blocks.map((b) => b.map((r) => r.map(csvCell).join(',')).join('\r\n')).join('\r\n\r\n')}\r\n`
}

function changeCell(value: number, previous: number): number | null {
  return percentChange(value, previous)
}
