import { Cron } from 'croner'

/** A job's estimated GitHub Actions usage per month. */
export interface MonthlyCost {
  /** Scheduled runs in an average month (a 365-day year / 12), manual runs and re-runs not counted. */
  runsPerMonth: number
  /** Minutes GitHub bills per run: the per-run estimate rounded up to a whole minute (at least 1). */
  billedMinutesPerRun: number
  /** runsPerMonth × billedMinutesPerRun, rounded up. */
  minutesPerMonth: number
}

/**
 * Minutes a run spends outside the job on a GitHub-hosted runner (an estimate, not measured from here): job start,
 * checkout, setup-node and pnpm, `pnpm install --frozen-lockfile` from the cached store, tsx start-up: about 30 s.
 */
export const setupOverheadMinutes = 0.5

/** The per-run minutes of a job that itself takes `jobMs` (default 15 s), setup overhead included. */
export function perRunMinutes(jobMs = 15_000): number {
  return setupOverheadMinutes + Math.max(0, jobMs) / 60_000
}

// A fixed non-leap year keeps the estimate deterministic: 365 days, so a month is 365/12 days on average.
const yearStart = new Date('2026-01-01T00:00:00Z')
const yearEnd = new Date('2027-01-01T00:00:00Z')
const dayEnd = new Date('2026-01-02T00:00:00Z')

function count(expression: string, from: Date, to: Date): number {
  const cron = new Cron(expression, { paused: true, mode: '5-part' })
  let n = 0
  let at = cron.nextRun(new Date(from.getTime() - 1))
  while (at && at < to) {
    n++
    at = cron.nextRun(at)
  }
  return n
}

/**
 * Scheduled runs per average month of one or more 5-field crons, computed as (fire times per day) × (matching days
 * per year) / 12 so that even `*\/5 * * * *` costs a few hundred croner steps, not 100,000. Throws on an invalid cron.
 */
export function runsPerMonth(cron: string | readonly string[]): number {
  const crons = typeof cron === 'string' ? [cron] : cron
  let perYear = 0
  for (const expression of crons) {
    const fields = expression.trim().split(/\s+/)
    if (fields.length !== 5) throw new Error(`"${expression}" is not a 5-field cron expression`)
    const [minute, hour, dom, month, dow] = fields as [string, string, string, string, string]
    perYear +=
      count(`${minute} ${hour} * * *`, yearStart, dayEnd) * count(`0 0 ${dom} ${month} ${dow}`, yearStart, yearEnd)
  }
  return perYear / 12
}

/** Estimated Actions minutes per month of a job scheduled by `cron` whose run takes `perRunMinutes` (setup included). */
export function estimateMonthlyMinutes(cron: string | readonly string[], perRunMinutes: number): MonthlyCost {
  const runs = runsPerMonth(cron)
  const billedMinutesPerRun = Math.max(1, Math.ceil(perRunMinutes - 1e-9))
  return { runsPerMonth: runs, billedMinutesPerRun, minutesPerMonth: Math.ceil(runs * billedMinutesPerRun - 1e-9) }
}
