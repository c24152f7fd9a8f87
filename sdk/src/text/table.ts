/** One column of a plain-text table. */
export interface TableColumn {
  head: string
  /** Narrowest it may be cut to (default: its heading's width, at least 8); longer cells end in `…`. */
  min?: number
  /** Left out, lowest first, when even the narrowest columns do not fit (default: always kept). */
  drop?: number
}

/** The width tables fit: COLUMNS when set, else the terminal's, else none (piped output keeps whole lines). */
export function terminalWidth(
  env: Readonly<Record<string, string | undefined>>,
  ttyColumns?: number,
): number | undefined {
  const columns = Number(env.COLUMNS)
  if (Number.isInteger(columns) && columns > 0) return columns
  return ttyColumns && ttyColumns > 0 ? ttyColumns : undefined
}

const gap = 2

/** Cuts `text` to `width` characters, ending in `…` when cut. */
export function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`
}

/**
 * Renders rows as an aligned plain-text table no wider than `width` (when given): the widest columns are cut first,
 * down to their `min`; columns with a `drop` rank are left out (lowest first) when that is not enough.
 */
export function textTable(
  columns: readonly (string | TableColumn)[],
  rows: readonly (readonly string[])[],
  width?: number,
): string {
  let cols = columns.map((c, index) => ({ ...(typeof c === 'string' ? { head: c } : c), index }))
  const natural = (i: number) => Math.max(cols[i]!.head.length, ...rows.map((r) => (r[cols[i]!.index] ?? '').length))
  const minOf = (c: (typeof cols)[number], i: number) => Math.min(natural(i), c.min ?? Math.max(c.head.length, 8))
  const total = (ws: number[]) => ws.reduce((a, b) => a + b, 0) + gap * Math.max(0, ws.length - 1)
  if (width !== undefined) {
    // Leave out droppable columns while even their narrowest widths do not fit.
    for (;;) {
      const narrowest = cols.map((c, i) => minOf(c, i))
      const droppable = cols.filter((c) => c.drop !== undefined).sort((a, b) => a.drop! - b.drop!)
      if (total(narrowest) <= width || droppable.length === 0) break
      cols = cols.filter((c) => c !== droppable[0])
    }
  }
  const widths = cols.map((_c, i) => natural(i))
  if (width !== undefined) {
    const mins = cols.map((c, i) => minOf(c, i))
    while (total(widths) > width) {
      let widest = -1
      for (let i = 0; i < widths.length; i++)
        if (widths[i]! > mins[i]! && (widest < 0 || widths[i]! > widths[widest]!)) widest = i
      if (widest < 0) break
      widths[widest] = Math.max(mins[widest]!, widths[widest]! - Math.max(1, total(widths) - width))
    }
  }
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => cut(c, widths[i]!).padEnd(widths[i]!))
      .join(' '.repeat(gap))
      .trimEnd()
  return [
    line(cols.map((c) => c.head)),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(cols.map((c) => r[c.index] ?? ''))),
  ].join('\n')
}

/** Wraps `text` at spaces into lines of at most `width` characters (a longer word stays whole); no width: as is. */
export function wrap(text: string, width?: number, indent = ''): string {
  if (!width) return text
  return text
    .split('\n')
    .map((paragraph) => {
      const lines: string[] = []
      let line = ''
      for (const word of paragraph.split(' ')) {
        if (line && line.length + 1 + word.length > width) {
          lines.push(line)
          line = indent + word
        } else line = line ? `${line} ${word}` : word
      }
      lines.push(line)
      return lines.join('\n')
    })
    .join('\n')
}
