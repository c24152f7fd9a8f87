import { formatMs, type Logger } from '@admin-jobs/sdk'

/** Tracks a long loop and logs `rows, rate, ETA` at most every `everyMs` (default 5 s). */
export interface Progress {
  /** Records that `rows` are done in total and `fraction` (0–1) of the work is behind us. */
  update(rows: number, fraction: number): void
}

/** Creates a progress reporter; nothing is logged for loops shorter than `everyMs`. */
export function createProgress(options: {
  log?: Logger
  label: string
  everyMs?: number
  now?: () => number
}): Progress {
  const now = options.now ?? (() => performance.now())
  const everyMs = options.everyMs ?? 5000
  const started = now()
  let last = started
  return {
    update(rows, fraction) {
      const t = now()
      if (!options.log || t - last < everyMs) return
      last = t
      const elapsed = t - started
      const rate = elapsed > 0 ? Math.round((rows * 1000) / elapsed) : 0
      const etaMs = fraction > 0 && fraction < 1 ? (elapsed * (1 - fraction)) / fraction : 0
      options.log.info(`${options.label}: progress`, {
        rows,
        done: `${Math.min(100, fraction * 100).toFixed(1)}%`,
        rate: `${rate.toLocaleString('en-US')}/s`,
        eta: formatMs(etaMs),
      })
    },
  }
}
