import { nice, ticks } from 'd3-array'

/** A value axis: its range and the values that get a grid line and a label. */
export interface ChartAxis {
  min: number
  max: number
  ticks: number[]
}

// d3's nice() picks steps of 1, 2 or 5 × 10^n for about `count` ticks. With 5 ticks the top can land up to ~1.27×
// the data (15.8 → 20), so the count grows until the axis ends within 1.25×; at 8 it always does.
const headroom = 1.25
const counts = [5, 6, 7, 8]

/**
 * The value axis for `values`: it always includes 0, its ends are round numbers (d3-array's nice/ticks), the
 * maximum is at most 1.25× the largest value (455 → 500, 1,001 → 1,200), and counts get whole-number ticks only.
 * All-zero or empty data gets 0–1.
 */
export function chartAxis(values: readonly number[]): ChartAxis {
  const finite = values.filter(Number.isFinite)
  let lo = Math.min(0, ...finite)
  let hi = Math.max(0, ...finite)
  if (lo === hi) hi = lo + 1
  const whole = finite.every(Number.isInteger)
  let domain: [number, number] = [lo, hi]
  let count = counts[0]!
  for (count of counts) {
    domain = nice(lo, hi, count)
    if (domain[1] <= hi * headroom && domain[0] >= lo * headroom) break
  }
  ;[lo, hi] = domain
  const all = ticks(lo, hi, count)
  return { min: lo, max: hi, ticks: whole ? all.filter(Number.isInteger) : all }
}

/**
 * The labels of an axis's ticks, in one style for the whole axis: `1,500`, `0.25`; when the axis reaches a million,
 * all compact (`500K`, `1M`, `1.5M`), so that `500,000` never stands beside `1M`.
 */
export function formatTicks(ticks: readonly number[]): string[] {
  // Made per call, not at import: building a number format loads locale data, which every job would pay for.
  const compact = ticks.some((t) => Math.abs(t) >= 1_000_000)
  const format = new Intl.NumberFormat('en-US', {
    maximumFractionDigits: 2,
    ...(compact ? { notation: 'compact' } : {}),
  })
  return ticks.map((t) => format.format(t))
}
