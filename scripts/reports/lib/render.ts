import { escapeHtml, markdownTable } from '@admin-jobs/sdk'
import { chartSize, renderChartMermaid } from '@admin-jobs/sdk/charts'
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

/** The report as plain text (the email's text part). */
export function renderText(doc: ReportDocument, options: { runUrl?: string } = {}): string {
  const out = [`${doc.title}: ${doc.periodLabel}`, `Period ${periodLine(doc)}`, '']
  for (const [i, [label, ...values]] of headlineRows(doc).slice(1).entries()) {
    const note = doc.headline[i]?.note
    const figures = note === undefined ? values : values.slice(0, -1)
    out.push(`${label}: ${figures.join(' / ')}${note ? ` (${note})` : ''}`)
  }
  if (doc.findings) out.push('', 'Checklist:', ...checklistLines(doc).map((l) => `- ${l.replace(/\*\*/g, '')}`))
  for (const section of doc.sections) {
    out.push('', `${section.title}:`)
    if (section.note) out.push(section.note)
    if (section.table?.rows.length) {
      for (const row of section.table.rows) out.push(`- ${row.map(cellText).join(' · ')}`)
    } else if (section.table || !section.note) out.push(section.empty)
  }
  if (options.runUrl) out.push('', `Run: ${options.runUrl}`)
  return `${out.join('\n')}\n`
}

const th = 'style="text-align:left;padding:4px 10px;border-bottom:2px solid #d1d5db;font-size:13px"'
const td = 'style="padding:4px 10px;border-bottom:1px solid #e5e7eb;font-size:13px"'

function htmlTable(rows: readonly (readonly string[])[]): string {
  const [head, ...body] = rows
  if (!head) return ''
  return [
    '<table cellpadding="0" cellspacing="0" border="0" style="border-collapse:collapse;margin:4px 0 12px">',
    `<tr>${head.map((h) => `<th ${th}>${escapeHtml(h)}</th>`).join('')}</tr>`,
    ...body.map((r) => `<tr>${r.map((c) => `<td ${td}>${escapeHtml(c)}</td>`).join('')}</tr>`),
    '</table>',
  ].join('\n')
}

/**
 * The report as an HTML email: inline styles and tables only (Gmail and Outlook), the chart as `<img src="cid:…">`
 * (an inline PNG attachment, never SVG or an external image).
 */
export function renderHtml(doc: ReportDocument, options: { chartCid?: string; runUrl?: string } = {}): string {
  const out = [
    '<!doctype html>',
    '<html><body style="margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;color:#1f2937">',
    `<h2 style="margin:0 0 4px">${escapeHtml(doc.title)}: ${escapeHtml(doc.periodLabel)}</h2>`,
    `<p style="margin:0 0 12px;color:#6b7280;font-size:12px">Period ${escapeHtml(periodLine(doc))}</p>`,
    htmlTable(headlineRows(doc)),
  ]
  if (doc.chart && options.chartCid) {
    // The PNG has twice the pixels; width and height (not CSS alone) size it in Outlook, max-width on phones.
    const { width, height } = chartSize(doc.chart)
    out.push(
      `<p><img src="cid:${options.chartCid}" width="${width}" height="${height}" alt="${escapeHtml(doc.chart.title)}" style="display:block;border:0;max-width:100%;height:auto"></p>`,
    )
  }
  if (doc.findings) {
    out.push('<h3 style="margin:16px 0 4px">Checklist</h3><ul>')
    out.push(...checklistLines(doc).map((l) => `<li>${escapeHtml(l).replace(/\*\*(.+?)\*\*/g, '<b>$1</b>')}</li>`))
    out.push('</ul>')
  }
  for (const section of doc.sections) {
    out.push(`<h3 style="margin:16px 0 4px">${escapeHtml(section.title)}</h3>`)
    if (section.note) out.push(`<p style="margin:0 0 6px;font-size:13px">${escapeHtml(section.note)}</p>`)
    if (section.table?.rows.length) out.push(htmlTable(tableRows(section.table)))
    else if (section.table || !section.note)
      out.push(`<p style="margin:0 0 6px;font-size:13px;color:#6b7280"><i>${escapeHtml(section.empty)}</i></p>`)
  }
  if (options.runUrl) out.push(`<p style="font-size:12px"><a href="${escapeHtml(options.runUrl)}">Run</a></p>`)
  out.push('</body></html>')
  return `${out.join('\n')}\n`
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
