import type { Sql } from 'postgres'
import { nextRun, type ScheduleSpec, typicalInterval } from './schedules.ts'

const hourMs = 3_600_000

/** A scheduled run that should have started by now but did not. */
export interface MissedRun {
  job: string
  /** The fire time whose run is missing. */
  expectedAt: Date
  lastRunAt: Date | undefined
  intervalMs: number
  graceMs: number
}

/** Default grace before a run counts as missed: 30 minutes, or two intervals for jobs that run more often than hourly. */
export function defaultGrace(intervalMs: number): number {
  return intervalMs < hourMs ? 2 * intervalMs : 30 * 60_000
}

/** What checkMissed needs about one job. */
export interface MissedCheck {
  job: string
  schedule: ScheduleSpec
  /** Start of the job's latest real run (any outcome, dry runs excluded). */
  lastRunAt: Date | undefined
  now: Date
  /** Fire times before this are not expected (first time the watchdog saw the job, or the end of its last pause). */
  watchFrom?: Date
  /** Overrides defaultGrace. */
  graceMs?: number
}

/**
 * The missed run of a job, if any: the first fire time after its latest run (or after `watchFrom`) that is more than
 * a grace in the past. Fire times come from croner in the schedule's timezone, so DST shifts are exact; for a regular
 * schedule this is "the latest run started longer ago than the interval plus the grace".
 */
export function checkMissed(input: MissedCheck): MissedRun | undefined {
  if (input.schedule.cron.length === 0) return undefined
  const intervalMs = typicalInterval(input.schedule, input.now) ?? 24 * hourMs
  const graceMs = input.graceMs ?? defaultGrace(intervalMs)
  const from = [input.lastRunAt, input.watchFrom]
    .filter((d): d is Date => d !== undefined)
    .reduce<Date | undefined>((a, b) => (a && a > b ? a : b), undefined)
  if (!from) return undefined
  const expectedAt = nextRun(input.schedule, from)
  if (!expectedAt || input.now.getTime() <= expectedAt.getTime() + graceMs) return undefined
  return { job: input.job, expectedAt, lastRunAt: input.lastRunAt, intervalMs, graceMs }
}

/** A job whose latest finished runs all failed. */
export interface FailingJob {
  job: string
  failures: number
  since: Date
  lastError: string | undefined
}

/** One finished run, newest first, as checkFailing reads it. */
export interface FinishedRun {
  status: string
  startedAt: Date
  error: string | null
}

/** The failure streak of a job when its newest `threshold` finished runs all failed or timed out (default 3). */
export function checkFailing(job: string, newestFirst: readonly FinishedRun[], threshold = 3): FailingJob | undefined {
  let streak = 0
  while (streak < newestFirst.length && ['failed', 'timed_out'].includes(newestFirst[streak]!.status)) streak++
  if (streak < threshold) return undefined
  return {
    job,
    failures: streak,
    since: newestFirst[streak - 1]!.startedAt,
    lastError: newestFirst[0]!.error?.split('\n')[0]?.slice(0, 300),
  }
}

/** The latest real (not dry-run) run start of every job. */
export async function latestRuns(sql: Sql): Promise<Map<string, Date>> {
  const rows = await sql<{ job: string; started_at: Date }[]>`
    select job, max(started_at) as started_at from jobs.runs where not dry_run group by job`
  return new Map(rows.map((r) => [r.job, r.started_at]))
}

/** The newest `limit` finished real runs of every job (skipped runs left out), newest first. */
export async function recentFinishedRuns(sql: Sql, limit: number): Promise<Map<string, FinishedRun[]>> {
  const rows = await sql<{ job: string; status: string; started_at: Date; error: string | null }[]>`
    select job, status, started_at, error from (
      select job, status, started_at, error,
             row_number() over (partition by job order by started_at desc, id desc) as n
      from jobs.runs
      where not dry_run and status not in ('running', 'skipped')
    ) r
    where n <= ${limit}
    order by job, started_at desc`
  const byJob = new Map<string, FinishedRun[]>()
  for (const r of rows) {
    const list = byJob.get(r.job) ?? []
    list.push({ status: r.status, startedAt: r.started_at, error: r.error })
    byJob.set(r.job, list)
  }
  return byJob
}
