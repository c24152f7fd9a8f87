const units: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 }

/** A unit of a written duration: milliseconds, seconds, minutes (`m` or `min`), hours, days. */
export type DurationUnit = 'ms' | 's' | 'm' | 'min' | 'h' | 'd'

/** A duration like `15m`, `90s`, `2h`, `500ms` or a number of milliseconds. */
export type Duration = string | number

/**
 * Parses written durations, the one grammar for job timeouts, settings (`WATCHDOG_GRACE=30m`), `--drain-timeout` and
 * `pause --until 2h`: a non-negative number and a unit (ms, s, m or min, h, d), as in `500ms`, `1.5h`, `90 min`. A bare
 * number is read in `bare` when given (settings read `30` as seconds) and refused otherwise. Returns milliseconds, or
 * undefined when the text is no duration, so each caller words its own error.
 */
export function parseDuration(text: string, options: { bare?: DurationUnit } = {}): number | undefined {
  const match = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|min|m|h|d)?$/.exec(text.trim())
  const unit = match?.[2] ?? options.bare
  if (!match || !unit) return undefined
  return Number(match[1]) * units[unit]!
}

/** Parses a Duration into milliseconds; throws on garbage (no silent default). */
export function toMs(value: Duration): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new TypeError(`invalid duration: ${value}`)
    return value
  }
  const ms = parseDuration(value)
  if (ms === undefined) throw new TypeError(`invalid duration "${value}" (use e.g. 500ms, 30s, 15m, 2h, 1d)`)
  return ms
}

/** Formats milliseconds for humans: `850ms`, `12.3s`, `4m 05s`, `2h 03m`. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`
  const totalSeconds = Math.round(ms / 1000)
  const h = Math.floor(totalSeconds / 3600)
  const m = Math.floor((totalSeconds % 3600) / 60)
  const s = totalSeconds % 60
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`
  return `${m}m ${String(s).padStart(2, '0')}s`
}
