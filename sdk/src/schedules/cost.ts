import { Cron } from 'croner'
import { type JobSchedule, runsBetween, type ScheduleEntry, scheduleEntries } from './schedules.ts'
import type { SharedRunner } from './shared.ts'

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
 * Minutes a run spends outside the job on a GitHub-hosted runner, about 20 s: job start, checkout, setup-node and
 * pnpm, node_modules restored from the Actions cache (the install skipped), the job's process start, the post steps.
 * docs/actions.md ("Cost") shows what of it was measured and how; correct it from real run timings.
 */
export const setupOverheadMinutes = 20 / 60

/** The time a job is assumed to take when it has no history to take a median from: 10 s. */
export const defaultJobMs = 10_000

/** Each job a shared run starts beyond the first: its process (tsx, connect, lock, record), about 2 s. */
export const stepOverheadMinutes = 2 / 60
/** The per-run minutes of a job that itself takes `jobMs` (default defaultJobMs), setup overhead included. */
export function perRunMinutes(jobMs = defaultJobMs): number {
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
export function runsPerMonth(cron: string | readonly (string | ScheduleEntry)[]): number {
  // A zone moves fire times, not how many there are (but for the hour a DST change skips or repeats).
  const crons = (typeof cron === 'string' ? [cron] : cron).map((c) => (typeof c === 'string' ? c : c.cron))
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
export function estimateMonthlyMinutes(
  cron: string | readonly (string | ScheduleEntry)[],
  perRunMinutes: number,
): MonthlyCost {
  const runs = runsPerMonth(cron)
  const billedMinutesPerRun = Math.max(1, Math.ceil(perRunMinutes - 1e-9))
  return { runsPerMonth: runs, billedMinutesPerRun, minutesPerMonth: Math.ceil(runs * billedMinutesPerRun - 1e-9) }
}

// A week of ticks holds every weekday pattern; the frequent jobs' crons have no day-of-month or month fields.
const weekStart = new Date('2026-01-05T00:00:00Z') // a Monday
const weekEnd = new Date('2026-01-12T00:00:00Z')

/**
 * The Actions usage of a shared runner: its ticks per month × the average billed minutes of a tick, where a tick runs
 * one setup plus, for each job due in it (from the job's own schedule), the job's time and stepOverheadMinutes.
 * The average is taken over one simulated week of ticks (exact for schedules without day-of-month or month fields).
 */
export function estimateSharedMinutes(
  shared: SharedRunner,
  schedules: readonly JobSchedule[],
  jobMs: (job: string) => number,
): MonthlyCost & { averageMinutesPerRun: number } {
  const ticks = runsBetween({ cron: [], timezone: undefined, entries: shared.tick }, weekStart, weekEnd).map((d) =>
    d.getTime(),
  )
  const minutes = ticks.map(() => setupOverheadMinutes - stepOverheadMinutes)
  for (const job of shared.jobs) {
    const schedule = schedules.find((s) => s.job === job)
    if (!schedule) continue
    let i = 0
    // Each fire time is run by the first tick at or after it (the window (previous tick, tick]).
    for (const at of runsBetween(schedule, weekStart, weekEnd)) {
      while (i < ticks.length && ticks[i]! < at.getTime()) i++
      if (i === ticks.length) break
      minutes[i]! += stepOverheadMinutes + Math.max(0, jobMs(job)) / 60_000
    }
  }
  const billed = minutes.map((m) => Math.max(1, Math.ceil(m - 1e-9)))
  const averageMinutesPerRun = billed.reduce((a, b) => a + b, 0) / Math.max(1, billed.length)
  const runs = runsPerMonth(scheduleEntries({ cron: [], timezone: undefined, entries: shared.tick }))
  return {
    runsPerMonth: runs,
    billedMinutesPerRun: Math.max(...billed, 1),
    averageMinutesPerRun,
    minutesPerMonth: Math.ceil(runs * averageMinutesPerRun - 1e-9),
  }
}

/** Whether ADMIN_JOBS_RUNNER (a label or a JSON array of labels; default ubuntu-latest) names a GitHub-hosted runner. */
export function isHostedRunner(runner: string | undefined): boolean {
  const value = runner?.trim()
  if (!value) return true
  let labels: unknown = value
  if (value.startsWith('[')) {
    try {
      labels = JSON.parse(value)
    } catch {
      labels = [value]
    }
  }
  const list = (Array.isArray(labels) ? labels : [labels]).map(String)
  if (list.includes('self-hosted')) return false
  return list.some((l) => /^(ubuntu|windows|macos)-/.test(l))
}

/** One line of an Actions usage estimate: a job's own workflow, or a shared runner. */
export interface UsageLine {
  /** The job id, or the shared runner's workflow file. */
  name: string
  /** The workflow the runs bill to. */
  workflowFile: string
  runsPerMonth: number
  /** 0 on a self-hosted runner; for a job the shared runner runs, its minutes are the shared runner's. */
  minutesPerMonth: number
  /** Set for a job run by a shared runner: that runner's workflow file. */
  sharedBy?: string
}

/** Estimated Actions usage per month of every scheduled workflow, and the total. */
export interface Usage {
  jobs: UsageLine[]
  sharedRunners: UsageLine[]
  totalMinutesPerMonth: number
  /** False when the runner is self-hosted: runs cost no minutes. */
  hosted: boolean
}

/**
 * The month's Actions minutes of the shipped schedules: each job's own workflow, except jobs a shared runner runs
 * while it is on (`sharedOn`, ADMIN_JOBS_SHARED_RUNNER), which bill to it; none on a self-hosted runner.
 * `jobMs` gives a job's typical run time (default defaultJobMs).
 */
export function estimateUsage(options: {
  schedules: readonly JobSchedule[]
  sharedRunners: readonly SharedRunner[]
  sharedOn: boolean
  hosted: boolean
  jobMs?: (job: string) => number | undefined
}): Usage {
  const jobMs = (job: string) => options.jobMs?.(job) ?? defaultJobMs
  const sharedBy = new Map<string, string>()
  if (options.sharedOn) for (const r of options.sharedRunners) for (const j of r.jobs) sharedBy.set(j, r.workflowFile)
  const free = (m: number) => (options.hosted ? m : 0)
  const jobs = options.schedules
    .filter((s) => s.cron.length > 0)
    .map((s) => {
      const by = sharedBy.get(s.job)
      const cost = estimateMonthlyMinutes(scheduleEntries(s), perRunMinutes(jobMs(s.job)))
      return {
        name: s.job,
        workflowFile: by ?? s.workflowFile,
        runsPerMonth: cost.runsPerMonth,
        minutesPerMonth: by ? 0 : free(cost.minutesPerMonth),
        ...(by ? { sharedBy: by } : {}),
      }
    })
  const sharedRunners = options.sharedOn
    ? options.sharedRunners.map((r) => {
        const cost = estimateSharedMinutes(r, options.schedules, jobMs)
        return {
          name: r.workflowFile,
          workflowFile: r.workflowFile,
          runsPerMonth: cost.runsPerMonth,
          minutesPerMonth: free(cost.minutesPerMonth),
        }
      })
    : []
  const total = [...jobs, ...sharedRunners].reduce((sum, l) => sum + l.minutesPerMonth, 0)
  return { jobs, sharedRunners, totalMinutesPerMonth: total, hosted: options.hosted }
}
