/** A cell of a markdown table: text or a number (rendered with String()). */
export type MarkdownCell = string | number

/**
 * Renders rows as a GitHub-flavoured markdown table; the first row is the header. Pipes in cells are escaped and
 * newlines become spaces, so a cell never breaks the table. No rows: an empty string.
 */
export function markdownTable(rows: readonly (readonly MarkdownCell[])[]): string {
  const [head, ...body] = rows
  if (!head) return ''
  const cell = (v: MarkdownCell) => String(v).replace(/\|/g, '\\|').replace(/\r?\n/g, ' ')
  const line = (r: readonly MarkdownCell[]) => `| ${r.map(cell).join(' | ')} |`
  return [line(head), `| ${head.map(() => '---').join(' | ')} |`, ...body.map(line)].join('\n')
}
