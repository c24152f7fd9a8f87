import { chartAxis } from './axis.ts'
import type { ChartSpec } from './chart.ts'

/** The same chart as a mermaid `xychart-beta` block for markdown job summaries, on the same value axis as the PNG. */
export function renderChartMermaid(spec: ChartSpec): string {
  // Mermaid strings cannot escape a double quote; a single one reads the same.
  const quote = (s: string) => `"${s.replace(/"/g, "'").replace(/[\r\n]+/g, ' ')}"`
  const n = spec.labels.length
  const axis = chartAxis(spec.series.flatMap((s) => s.values.slice(0, n)))
  const value = (v: number) => (Number.isFinite(v) ? v : 0)
  return [
    '```mermaid',
    'xychart-beta',
    `  title ${quote(spec.title)}`,
    `  x-axis [${spec.labels.map(quote).join(', ')}]`,
    `  y-axis ${axis.min} --> ${axis.max}`,
    ...spec.series.map(
      (s) => `  ${s.type === 'line' ? 'line' : 'bar'} [${s.values.slice(0, n).map(value).join(', ')}]`,
    ),
    '```',
  ].join('\n')
}
