import { escapeHtml } from '../text/escape.ts'

/** The colour an email, a figure or a list item is drawn in: how urgent it is. */
export type Tone = 'critical' | 'warning' | 'info' | 'ok' | 'neutral'

/** One block of an email's body; each renders to HTML and to the text part alike. */
export type EmailBlock =
  | { type: 'text'; text: string }
  | { type: 'heading'; text: string }
  /** Label/value pairs (when, where, job …). */
  | { type: 'facts'; rows: readonly (readonly [string, string])[] }
  /** A row of big figures with their labels (a digest's counts). */
  | { type: 'stats'; items: readonly { label: string; value: string; tone?: Tone }[] }
  | { type: 'table'; columns: readonly string[]; rows: readonly (readonly string[])[]; numeric?: readonly number[] }
  | { type: 'list'; items: readonly { text: string; tone?: Tone; tag?: string }[] }
  /** An inline image sent as a `cid:` attachment (never an external URL, never SVG). */
  | { type: 'image'; cid: string; width: number; height: number; alt: string }
  /** A button in HTML, `label: href` in text. */
  | { type: 'link'; href: string; label: string }
  /** Small grey print: how a figure was counted, why an item is listed. */
  | { type: 'note'; text: string }

/** What an email says; renderEmail turns it into its HTML and text parts. */
export interface EmailContent {
  title: string
  /** A short uppercase label above the title (`critical`, `resolved`, `expiry notice`). */
  tag?: string
  tone?: Tone
  /** The line mail clients show after the subject (default: the first text block). */
  preview?: string
  blocks: readonly EmailBlock[]
  /** Who sent it and why, under the body (`admin-jobs on prod-eu · job notifications/expiry`). */
  footer?: string
}

/** An email's two parts, rendered from one EmailContent. */
export interface RenderedEmail {
  html: string
  text: string
}

const colors: Record<Tone, string> = {
  critical: '#b42318',
  warning: '#b54708',
  info: '#175cd3',
  ok: '#067647',
  neutral: '#475467',
}
const font = "-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
const small = 'font-size:13px;line-height:18px;color:#667085'

/** `31 Dec 2026, 10:29 UTC`: a time as people read it in an email. */
export function humanTime(at: Date): string {
  if (Number.isNaN(at.getTime())) return 'an unbounded time'
  const day = at.toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' })
  return `${day}, ${at.toISOString().slice(11, 16)} UTC`
}

/** `31 Dec 2026` (UTC). */
export function humanDate(at: Date): string {
  if (Number.isNaN(at.getTime())) return 'an unbounded date'
  return at.toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' })
}

function htmlBlock(block: EmailBlock): string {
  switch (block.type) {
    case 'text':
      return `<p style="margin:0 0 14px;font-size:15px;line-height:22px;white-space:pre-wrap">${escapeHtml(block.text)}</p>`
    case 'heading':
      return `<h2 style="margin:22px 0 8px;font-size:16px;line-height:22px;color:#101828">${escapeHtml(block.text)}</h2>`
    case 'note':
      return `<p style="margin:0 0 12px;${small}">${escapeHtml(block.text)}</p>`
    case 'facts':
      return [
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0" style="border-collapse:collapse;margin:0 0 14px;font-size:14px;line-height:20px">',
        ...block.rows.map(
          ([k, v]) =>
            `<tr><td style="padding:3px 16px 3px 0;color:#667085;vertical-align:top;white-space:nowrap">${escapeHtml(k)}</td><td style="padding:3px 0;color:#101828;overflow-wrap:anywhere">${escapeHtml(v)}</td></tr>`,
        ),
        '</table>',
      ].join('')
    case 'stats':
      return [
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0" style="border-collapse:separate;border-spacing:8px 0;margin:0 -8px 16px"><tr>',
        ...block.items.map(
          (s) =>
            `<td style="padding:10px 14px;background:#f9fafb;border:1px solid #eaecf0;border-radius:6px;vertical-align:top"><div style="font-size:22px;line-height:28px;font-weight:700;color:${colors[s.tone ?? 'neutral']}">${escapeHtml(s.value)}</div><div style="${small}">${escapeHtml(s.label)}</div></td>`,
        ),
        '</tr></table>',
      ].join('')
    case 'table': {
      const align = (i: number) => (block.numeric?.includes(i) ? 'right' : 'left')
      // A table wider than a phone scrolls inside its box instead of widening the message.
      return [
        '<div style="overflow-x:auto;margin:0 0 16px">',
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0" style="border-collapse:collapse;width:100%;font-size:13px;line-height:18px">',
        `<tr>${block.columns.map((c, i) => `<th style="text-align:${align(i)};padding:6px 8px;border-bottom:2px solid #d0d5dd;color:#475467;font-weight:600;white-space:nowrap">${escapeHtml(c)}</th>`).join('')}</tr>`,
        ...block.rows.map(
          (r) =>
            `<tr>${r.map((c, i) => `<td style="text-align:${align(i)};padding:6px 8px;border-bottom:1px solid #eaecf0;vertical-align:top;overflow-wrap:break-word${block.numeric?.includes(i) ? ';white-space:nowrap' : ''}">${escapeHtml(c)}</td>`).join('')}</tr>`,
        ),
        '</table></div>',
      ].join('')
    }
    case 'list':
      return [
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0" style="border-collapse:collapse;width:100%;margin:0 0 14px;font-size:14px;line-height:20px">',
        ...block.items.map((item) => {
          const color = colors[item.tone ?? 'neutral']
          const tag = item.tag
            ? `<span style="display:inline-block;margin-right:8px;padding:1px 6px;border-radius:4px;background:${color};color:#fff;font-size:11px;line-height:16px;font-weight:600;text-transform:uppercase;letter-spacing:.03em">${escapeHtml(item.tag)}</span>`
            : ''
          return `<tr><td style="padding:5px 0 5px 10px;border-left:3px solid ${color};border-bottom:4px solid #fff;background:#f9fafb">${tag}${escapeHtml(item.text)}</td></tr>`
        }),
        '</table>',
      ].join('')
    case 'image':
      // width and height (not CSS alone) size it in Outlook; max-width keeps it inside a phone's screen.
      return `<p style="margin:0 0 16px"><img src="cid:${escapeHtml(block.cid)}" width="${block.width}" height="${block.height}" alt="${escapeHtml(block.alt)}" style="display:block;border:0;max-width:100%;height:auto"></p>`
    case 'link':
      return `<p style="margin:18px 0 4px"><a href="${escapeHtml(block.href)}" style="display:inline-block;padding:9px 16px;border-radius:6px;background:#175cd3;color:#ffffff;text-decoration:none;font-size:14px;font-weight:600">${escapeHtml(block.label)}</a></p>`
  }
}

/** Pads the columns of a table for the text part (monospace readers), numbers right-aligned. */
function textTable(columns: readonly string[], rows: readonly (readonly string[])[], numeric: readonly number[]) {
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (numeric.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(columns), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)]
}

function textBlock(block: EmailBlock): string[] {
  switch (block.type) {
    case 'text':
    case 'note':
      return [block.text, '']
    case 'heading':
      return [block.text, '-'.repeat(Math.min(block.text.length, 72)), '']
    case 'facts':
      return [...block.rows.map(([k, v]) => `${k}: ${v}`), '']
    case 'stats':
      return [block.items.map((s) => `${s.label}: ${s.value}`).join(' · '), '']
    case 'table':
      return [...textTable(block.columns, block.rows, block.numeric ?? []), '']
    case 'list':
      return [...block.items.map((i) => `- ${i.tag ? `[${i.tag}] ` : ''}${i.text}`), '']
    case 'image':
      return [`[${block.alt}: see the HTML part or the attached image]`, '']
    case 'link':
      return [`${block.label}: ${block.href}`, '']
  }
}

/**
 * Renders an email's HTML and text parts from one content: a shared layout (a card on a grey page, the tone as its
 * top border, the tag and title, the blocks, the footer) with inline styles and tables only, so Gmail and Outlook
 * show it as browsers do. Every value is escaped with escapeHtml; the text part has the same content, in order.
 */
export function renderEmail(content: EmailContent): RenderedEmail {
  const tone = content.tone ?? 'neutral'
  const color = colors[tone]
  const preview = content.preview ?? content.blocks.find((b) => b.type === 'text')?.text ?? ''
  const html = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">',
    `<title>${escapeHtml(content.title)}</title>`,
    // Phones get narrower margins; clients that drop <style> keep the inline (desktop) ones.
    '<style>@media (max-width:520px){.aj-page{padding:8px 4px!important}.aj-body{padding:16px!important}}</style></head>',
    `<body style="margin:0;padding:0;background:#f2f4f7;font-family:${font};color:#101828">`,
    // The preview line mail clients show after the subject, hidden in the message itself.
    `<div style="display:none;max-height:0;overflow:hidden;opacity:0">${escapeHtml(preview.slice(0, 140))}</div>`,
    '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background:#f2f4f7;table-layout:fixed"><tr><td class="aj-page" align="center" style="padding:24px 12px">',
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="max-width:680px;table-layout:fixed;background:#ffffff;border-radius:8px;border-top:4px solid ${color}"><tr><td class="aj-body" style="padding:22px 28px 20px">`,
    content.tag
      ? `<p style="margin:0 0 4px;font-size:12px;line-height:16px;font-weight:600;letter-spacing:.06em;text-transform:uppercase;color:${color}">${escapeHtml(content.tag)}</p>`
      : '',
    `<h1 style="margin:0 0 16px;font-size:20px;line-height:28px;color:#101828">${escapeHtml(content.title)}</h1>`,
    ...content.blocks.map(htmlBlock),
    '</td></tr></table>',
    content.footer
      ? `<p style="margin:14px 0 0;max-width:680px;${small};font-size:12px">${escapeHtml(content.footer)}</p>`
      : '',
    '</td></tr></table></body></html>',
  ].join('\n')
  const text = [
    ...(content.tag ? [content.tag.toUpperCase()] : []),
    content.title,
    '='.repeat(Math.min(content.title.length, 72)),
    '',
    ...content.blocks.flatMap(textBlock),
    ...(content.footer ? ['--', content.footer] : []),
  ]
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()
  return { html, text: `${text}\n` }
}
