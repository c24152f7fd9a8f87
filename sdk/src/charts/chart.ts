import { glyphRows, glyphSize, textWidth } from './bitmap-font.ts'
import { encodePng } from './png.ts'

/** An RGB colour as `#rrggbb`. */
export type Color = `#${string}`

/** One data series of a chart: bars (grouped side by side) or a line with dots. */
export interface ChartSeries {
  name: string
  values: readonly number[]
  type?: 'bar' | 'line'
  color?: Color
}

/** A category chart: one x label per value, any number of series. */
export interface ChartSpec {
  title: string
  labels: readonly string[]
  series: readonly ChartSeries[]
  /** Pixel size; default 640 × 300. */
  width?: number
  height?: number
}

const palette: Color[] = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2']
const ink: Color = '#1f2937'
const grid: Color = '#e5e7eb'
const muted: Color = '#6b7280'

/** A drawing surface of RGB pixels. */
interface Canvas {
  width: number
  height: number
  pixels: Uint8Array
  rect(x: number, y: number, w: number, h: number, color: Color): void
  line(x0: number, y0: number, x1: number, y1: number, color: Color, thickness?: number): void
  text(x: number, y: number, text: string, color: Color, scale?: number): void
}

function rgb(color: Color): [number, number, number] {
  const n = Number.parseInt(color.slice(1), 16)
  return [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]
}

/** Creates a white canvas of `width` × `height` pixels. */
function createCanvas(width: number, height: number): Canvas {
  const pixels = new Uint8Array(width * height * 3).fill(255)
  const rect = (x: number, y: number, w: number, h: number, color: Color) => {
    const [r, g, b] = rgb(color)
    const x0 = Math.max(0, Math.round(x))
    const y0 = Math.max(0, Math.round(y))
    const x1 = Math.min(width, Math.round(x + w))
    const y1 = Math.min(height, Math.round(y + h))
    for (let yy = y0; yy < y1; yy++) {
      for (let xx = x0; xx < x1; xx++) {
        const i = (yy * width + xx) * 3
        pixels[i] = r
        pixels[i + 1] = g
        pixels[i + 2] = b
      }
    }
  }
  return {
    width,
    height,
    pixels,
    rect,
    line(x0, y0, x1, y1, color, thickness = 1) {
      const steps = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1)
      const half = Math.floor(thickness / 2)
      for (let s = 0; s <= steps; s++) {
        const x = x0 + ((x1 - x0) * s) / steps
        const y = y0 + ((y1 - y0) * s) / steps
        rect(Math.round(x) - half, Math.round(y) - half, thickness, thickness, color)
      }
    },
    text(x, y, text, color, scale = 1) {
      let cx = Math.round(x)
      for (const char of text) {
        const rows = glyphRows(char)
        rows.forEach((bits, row) => {
          for (let col = 0; col < glyphSize.width; col++) {
            if (bits & (1 << (glyphSize.width - 1 - col))) rect(cx + col * scale, y + row * scale, scale, scale, color)
          }
        })
        cx += (glyphSize.width + 1) * scale
      }
    },
  }
}

/** A round axis maximum ≥ `max` (1, 2, 2.5 or 5 × 10^n; 1 for an all-zero chart). */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1
  const magnitude = 10 ** Math.floor(Math.log10(max))
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= max) return step * magnitude
  return 10 * magnitude
}

// Counts get whole-number ticks: an axis of at least one unit per tick.
function axisMax(values: readonly number[], ticks: number): number {
  const top = Math.max(0, ...values)
  if (!values.every(Number.isInteger)) return niceMax(top)
  return Math.ceil(Math.max(1, niceMax(top / ticks))) * ticks
}

function formatTick(n: number): string {
  if (n >= 1_000_000) return `${+(n / 1_000_000).toFixed(1)}M`
  if (n >= 10_000) return `${+(n / 1000).toFixed(1)}K`
  return String(+n.toFixed(2))
}

/** Renders a bar/line chart as a PNG (no browser, no network): title, legend, y grid with labels, x labels. */
export function renderChartPng(spec: ChartSpec): Buffer {
  const width = spec.width ?? 640
  const height = spec.height ?? 300
  const canvas = createCanvas(width, height)
  const series = spec.series.map((s, i) => ({ ...s, color: s.color ?? palette[i % palette.length]! }))
  const ticks = 4
  const max = axisMax(
    series.flatMap((s) => s.values),
    ticks,
  )
  const left = 12 + Math.max(...Array.from({ length: ticks + 1 }, (_, t) => textWidth(formatTick((max * t) / ticks))))
  const plot = { x: left, y: 44, w: width - left - 12, h: height - 44 - 26 }

  canvas.text(12, 8, spec.title, ink, 2)
  let legendX = 12
  for (const s of series) {
    canvas.rect(legendX, 28, 8, 8, s.color)
    canvas.text(legendX + 12, 29, s.name, muted)
    legendX += 12 + textWidth(s.name) + 16
  }
  for (let t = 0; t <= ticks; t++) {
    const value = (max * t) / ticks
    const y = Math.round(plot.y + plot.h - (plot.h * t) / ticks)
    canvas.rect(plot.x, y, plot.w, 1, t === 0 ? ink : grid)
    const label = formatTick(value)
    canvas.text(plot.x - 4 - textWidth(label), y - 3, label, muted)
  }

  const n = Math.max(spec.labels.length, 1)
  const slot = plot.w / n
  const bars = series.filter((s) => (s.type ?? 'bar') === 'bar')
  const barWidth = Math.max(1, Math.floor((slot * 0.7) / Math.max(bars.length, 1)))
  const yOf = (v: number) => plot.y + plot.h - (plot.h * Math.max(0, v)) / max
  bars.forEach((s, b) => {
    s.values.forEach((v, i) => {
      const x = plot.x + slot * i + (slot - barWidth * bars.length) / 2 + b * barWidth
      const top = Math.round(yOf(v))
      canvas.rect(x, top, Math.max(1, barWidth - 1), plot.y + plot.h - top, s.color)
    })
  })
  for (const s of series.filter((s) => s.type === 'line')) {
    const points = s.values.map((v, i) => [Math.round(plot.x + slot * i + slot / 2), Math.round(yOf(v))] as const)
    points.forEach(([x, y], i) => {
      const next = points[i + 1]
      if (next) canvas.line(x, y, next[0], next[1], s.color, 2)
      canvas.rect(x - 2, y - 2, 5, 5, s.color)
    })
  }
  // Skip x labels evenly when they would overlap.
  const widest = Math.max(0, ...spec.labels.map((l) => textWidth(l)))
  const every = Math.max(1, Math.ceil((widest + 6) / slot))
  spec.labels.forEach((label, i) => {
    if (i % every !== 0) return
    const x = plot.x + slot * i + slot / 2 - textWidth(label) / 2
    canvas.text(Math.max(0, x), plot.y + plot.h + 8, label, ink)
  })
  return encodePng(width, height, canvas.pixels)
}

/** The same chart as a mermaid `xychart-beta` block for markdown job summaries. */
export function renderChartMermaid(spec: ChartSpec): string {
  const quote = (s: string) => `"${s.replace(/"/g, "'")}"`
  const max = axisMax(
    spec.series.flatMap((s) => s.values),
    4,
  )
  return [
    '```mermaid',
    'xychart-beta',
    `  title ${quote(spec.title)}`,
    `  x-axis [${spec.labels.map(quote).join(', ')}]`,
    `  y-axis 0 --> ${max}`,
    ...spec.series.map((s) => `  ${s.type === 'line' ? 'line' : 'bar'} [${s.values.join(', ')}]`),
    '```',
  ].join('\n')
}
