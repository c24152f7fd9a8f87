import { escapeXml } from '../text/escape.ts'
import { type ChartAxis, chartAxis, formatTicks } from './axis.ts'
import { type ChartSeries, type ChartSpec, type Color, chartPalette, chartSize } from './chart.ts'
import { fitText, textWidth } from './text-width.ts'

/** The font stack of chart text: the PNG renderer has DejaVu Sans; a browser showing the SVG falls back by width. */
export const chartFontFamily = 'DejaVu Sans, Verdana, Arial, sans-serif'

const ink = '#1f2937'
const muted = '#4b5563'
const grid = '#e5e7eb'
const baseline = '#9ca3af'
const white = '#ffffff'
const pad = 16
const titleSize = 16
const labelSize = 13

type Attrs = Record<string, string | number>
type Series = Required<Pick<ChartSeries, 'name' | 'values' | 'type'>> & { color: Color }
/** Where things go: the plot box, the value → y mapping, and the category slots. */
interface Frame {
  left: number
  right: number
  top: number
  bottom: number
  y: (value: number) => number
  centre: (index: number) => number
  slot: number
}

const round = (n: number) => Math.round(n * 10) / 10
const attrs = (a: Attrs) =>
  Object.entries(a)
    .map(([k, v]) => ` ${k}="${typeof v === 'number' ? round(v) : escapeXml(v)}"`)
    .join('')
const el = (name: string, a: Attrs, content?: string) =>
  content === undefined ? `<${name}${attrs(a)}/>` : `<${name}${attrs(a)}>${content}</${name}>`
const label = (x: number, y: number, text: string, a: Attrs = {}) =>
  el('text', { x, y, 'font-size': labelSize, fill: muted, ...a }, escapeXml(text))
// A 1 px line on a half pixel covers whole device pixels at 1× and 2×, so grid lines stay crisp.
const crisp = (y: number) => Math.round(y) + 0.5

/**
 * The chart as a standalone SVG document (also valid inline in HTML: no ids, no stylesheet): title, legend, value
 * grid with round ticks, grouped bars, lines with dots, category labels thinned so they never overlap. Each bar
 * and dot carries a `<title>` tooltip. Every text is escaped; an empty chart says "No data".
 */
export function renderChartSvg(spec: ChartSpec): string {
  const { width, height } = chartSize(spec)
  const series = withColors(spec)
  const parts = [el('rect', { width, height, fill: white })]
  parts.push(
    el(
      'text',
      { x: pad, y: pad + 13, 'font-size': titleSize, 'font-weight': 'bold', fill: ink },
      escapeXml(fitText(spec.title, width - 2 * pad, titleSize, true)),
    ),
  )
  const legendBottom = legend(series, width, parts)
  const axis = chartAxis(series.flatMap((s) => s.values))
  const ticks = formatTicks(axis.ticks)
  const left = pad + Math.max(...ticks.map((t) => textWidth(t, labelSize))) + 8
  const frame = frameOf(axis, spec.labels.length, {
    left,
    right: width - pad,
    top: legendBottom + 24,
    bottom: height - pad - 22,
  })
  axis.ticks.forEach((t, i) => {
    const y = crisp(frame.y(t))
    parts.push(
      el('line', {
        x1: frame.left,
        y1: y,
        x2: frame.right,
        y2: y,
        stroke: t === 0 ? baseline : grid,
        'stroke-width': 1,
      }),
      label(frame.left - 8, y + 4, ticks[i]!, { 'text-anchor': 'end' }),
    )
  })
  if (!series.some((s) => s.values.some(Number.isFinite))) {
    const middle = { x: (frame.left + frame.right) / 2, y: (frame.top + frame.bottom) / 2 }
    parts.push(label(middle.x, middle.y, 'No data', { 'text-anchor': 'middle' }))
  }
  const tip = (i: number, name: string, v: number) =>
    el('title', {}, escapeXml(`${spec.labels[i]}: ${name} ${v.toLocaleString('en-US')}`))
  bars(series, frame, tip, parts)
  lines(series, frame, tip, parts)
  categoryLabels(spec.labels, frame, width, parts)

  const root = {
    xmlns: 'http://www.w3.org/2000/svg',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    'font-family': chartFontFamily,
    role: 'img',
    'aria-label': spec.title,
  }
  return el('svg', root, el('title', {}, escapeXml(spec.title)) + parts.join(''))
}

/** The series with their values cut to the labels, and a colour each: unset ones take palette colours not asked for. */
function withColors(spec: ChartSpec): Series[] {
  const taken = new Set(spec.series.map((s) => s.color?.toLowerCase()))
  const free = chartPalette.filter((c) => !taken.has(c))
  const colors = free.length ? free : chartPalette
  let next = 0
  return spec.series.map((s) => ({
    name: s.name,
    type: s.type ?? 'bar',
    color: s.color ?? colors[next++ % colors.length]!,
    values: s.values.slice(0, spec.labels.length),
  }))
}

/** Draws the legend under the title, wrapping into rows; returns the y of its last row (the title's, if none). */
function legend(series: readonly Series[], width: number, parts: string[]): number {
  if (!series.length) return pad + titleSize
  let y = pad + titleSize + 18
  let x = pad
  for (const s of series) {
    const name = fitText(s.name, width - 2 * pad - 16, labelSize)
    const item = 16 + textWidth(name, labelSize)
    if (x > pad && x + item > width - pad) {
      x = pad
      y += 18
    }
    parts.push(
      s.type === 'line'
        ? el('line', { x1: x, y1: y, x2: x + 12, y2: y, stroke: s.color, 'stroke-width': 2 }) +
            el('circle', { cx: x + 6, cy: y, r: 3, fill: s.color })
        : el('rect', { x: x + 1, y: y - 5, width: 10, height: 10, fill: s.color }),
      label(x + 16, y + 4, name, { fill: ink }),
    )
    x += item + 18
  }
  return y
}

function frameOf(axis: ChartAxis, n: number, box: Pick<Frame, 'left' | 'right' | 'top' | 'bottom'>): Frame {
  const slot = (box.right - box.left) / Math.max(n, 1)
  return {
    ...box,
    slot,
    y: (v) => box.bottom - ((v - axis.min) / (axis.max - axis.min)) * (box.bottom - box.top),
    centre: (i) => box.left + slot * (i + 0.5),
  }
}

type Tip = (index: number, name: string, value: number) => string

/** Bars of all bar series side by side in each slot, from zero; a zero or missing value draws nothing. */
function bars(series: readonly Series[], frame: Frame, tip: Tip, parts: string[]): void {
  const barSeries = series.filter((s) => s.type === 'bar')
  const group = frame.slot * (barSeries.length > 1 ? 0.8 : 0.7)
  const width = group / Math.max(barSeries.length, 1)
  const gap = barSeries.length > 1 ? 1 : 0
  barSeries.forEach((s, b) => {
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v) || v === 0) return
      const top = frame.y(Math.max(v, 0))
      const box = {
        x: frame.centre(i) - group / 2 + b * width,
        y: top,
        width: Math.max(1, width - gap),
        height: Math.max(1, frame.y(Math.min(v, 0)) - top),
        fill: s.color,
      }
      parts.push(el('rect', box, tip(i, s.name, v)))
    })
  })
}

/** Each line series as a polyline (broken at missing values) over a white halo, with a dot per value. */
function lines(series: readonly Series[], frame: Frame, tip: Tip, parts: string[]): void {
  for (const s of series.filter((s) => s.type === 'line')) {
    const runs: string[][] = [[]]
    s.values.forEach((v, i) => {
      if (Number.isFinite(v)) runs.at(-1)!.push(`${round(frame.centre(i))},${round(frame.y(v))}`)
      else if (runs.at(-1)!.length) runs.push([])
    })
    // The halo keeps the line readable where it crosses bars.
    for (const points of runs.filter((r) => r.length > 1)) {
      for (const [stroke, strokeWidth] of [[white, 4] as const, [s.color, 2] as const]) {
        parts.push(
          el('polyline', {
            points: points.join(' '),
            fill: 'none',
            stroke,
            'stroke-width': strokeWidth,
            'stroke-linejoin': 'round',
            'stroke-linecap': 'round',
          }),
        )
      }
    }
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) return
      const dot = { cx: frame.centre(i), cy: frame.y(v), r: 2.5, fill: s.color, stroke: white, 'stroke-width': 1 }
      parts.push(el('circle', dot, tip(i, s.name, v)))
    })
  }
}

/**
 * The category labels under the plot, thinned evenly (every 2nd, 3rd, …) until the widest fits its share with a
 * gap; a very long label is cut rather than thinning the others away. The end labels are pulled inside the chart,
 * and one that would then come too near its neighbour is left out.
 */
function categoryLabels(texts: readonly string[], frame: Frame, width: number, parts: string[]): void {
  const labels = texts.map((l) => fitText(l, Math.max(frame.slot - 6, 120), labelSize))
  const widest = Math.max(0, ...labels.map((l) => textWidth(l, labelSize)))
  const every = Math.max(1, Math.ceil((widest + 6) / frame.slot))
  let lastRight = Number.NEGATIVE_INFINITY
  labels.forEach((text, i) => {
    if (i % every !== 0) return
    const half = textWidth(text, labelSize) / 2
    const x = Math.min(Math.max(frame.centre(i), half + 2), width - half - 2)
    if (x - half < lastRight + 8) return
    lastRight = x + half
    parts.push(label(x, frame.bottom + 20, text, { 'text-anchor': 'middle', fill: ink }))
  })
}
