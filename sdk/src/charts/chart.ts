/** An RGB colour as `#rrggbb`. */
export type Color = `#${string}`

/** One data series of a chart: bars (grouped side by side) or a line with dots. */
export interface ChartSeries {
  name: string
  /** One value per label; a value that is not a finite number is left out (no bar, a gap in the line). */
  values: readonly number[]
  type?: 'bar' | 'line'
  color?: Color
}

/** A category chart: one x label per value, any number of series. */
export interface ChartSpec {
  title: string
  labels: readonly string[]
  series: readonly ChartSeries[]
  /** Size in CSS pixels; default 600 × 300 (fits a 600 px email column). */
  width?: number
  height?: number
  /** Device pixels per CSS pixel of the PNG; default 2, so it stays sharp on high-density screens. */
  pixelRatio?: number
}

/** The chart's size in CSS pixels (what an `<img>` shows it at): default 600 × 300. */
export function chartSize(spec: Pick<ChartSpec, 'width' | 'height'>): { width: number; height: number } {
  return { width: spec.width ?? 600, height: spec.height ?? 300 }
}

/** Series colours in order of appearance: distinct for colour-blind readers in pairs, dark enough on white. */
export const chartPalette: readonly Color[] = ['#2563eb', '#16a34a', '#dc2626', '#d97706', '#7c3aed', '#0891b2']
