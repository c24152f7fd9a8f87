import type { Sql } from 'postgres'
import { activePauses, type Pause, pauseFor } from '../records/pauses.ts'
import { loadLateness, type ScheduleLateness } from '../schedules/lateness.ts'
import { describeSchedule, type JobSchedule, nextRun } from '../schedules/schedules.ts'
import { formatMs } from '../text/duration.ts'

/** One run as the status page draws it. */
export interface StatusRun {
  id: number
  status: string
  startedAt: Date
  durationMs: number | null
  error: string | null
}

/** Everything the status table and page show about one job. */
export interface JobStatus {
  job: string
  description: string | undefined
  critical: boolean
  workflowFile: string | undefined
  schedule: string
  nextRun: Date | undefined
  lastRun: StatusRun | undefined
  /** Succeeded / finished runs over the window (skipped and dry runs left out); undefined without runs. */
  successRate: number | undefined
  finishedRuns: number
  /** Median duration of succeeded runs over the window (ms). */
  medianMs: number | undefined
  paused: Pause | undefined
  /** The newest runs, oldest first (dry runs left out). */
  recent: StatusRun[]
  /** Start minus slot of the schedule's recent runs, and the allowance the watchdog gives it (scheduled jobs only). */
  lateness?: ScheduleLateness
}

/** What loadStatus needs: the jobs to show and their schedules; window 30 days, 40 recent runs per job. */
export interface StatusInput {
  jobs: readonly { id: string; description?: string; critical?: boolean; exemptFromPauseAll?: string }[]
  schedules: readonly JobSchedule[]
  now?: Date
  windowDays?: number
  recent?: number
}

/** Reads the status of every job (plus any job found only in history) from `jobs.runs` and the pauses. */
export async function loadStatus(sql: Sql, input: StatusInput): Promise<JobStatus[]> {
  const now = input.now ?? new Date()
  const since = new Date(now.getTime() - (input.windowDays ?? 30) * 86_400_000)
  const [aggregates, recentRows, pauses, lateness] = await Promise.all([
    sql<{ job: string; finished: number; succeeded: number; median_ms: number | null }[]>`
      select job,
        count(*) filter (where status in ('succeeded', 'failed', 'timed_out', 'cancelled'))::int as finished,
        count(*) filter (where status = 'succeeded')::int as succeeded,
        (percentile_cont(0.5) within group (order by extract(epoch from finished_at - started_at) * 1000)
          filter (where status = 'succeeded'))::float8 as median_ms
      from jobs.runs
      where not dry_run and started_at >= ${since} and started_at <= ${now}
      group by job`,
    sql<
      { id: string; job: string; status: string; started_at: Date; finished_at: Date | null; error: string | null }[]
    >`
      select id, job, status, started_at, finished_at, error from (
        select id, job, status, started_at, finished_at, error,
               row_number() over (partition by job order by started_at desc, id desc) as n
        from jobs.runs where not dry_run and started_at <= ${now}
      ) r
      where n <= ${input.recent ?? 40}
      order by job, started_at, id`,
    activePauses(sql),
    loadLateness(sql, input.schedules, now),
  ])
  return buildStatus({ ...input, now }, { aggregates, recentRows, pauses, lateness })
}

/** What loadStatus reads from the database; all empty for a database no job has run against. */
export interface StatusRows {
  aggregates: readonly { job: string; finished: number; succeeded: number; median_ms: number | null }[]
  recentRows: readonly {
    id: string
    job: string
    status: string
    started_at: Date
    finished_at: Date | null
    error: string | null
  }[]
  pauses: readonly Pause[]
  lateness?: ReadonlyMap<string, ScheduleLateness>
}

/** The status of every job (plus any job found only in history) from the rows loadStatus read. */
export function buildStatus(input: StatusInput, rows: StatusRows): JobStatus[] {
  const { aggregates, recentRows, pauses } = rows
  const now = input.now ?? new Date()
  const aggregateOf = new Map(aggregates.map((a) => [a.job, a]))
  const recentOf = new Map<string, StatusRun[]>()
  for (const r of recentRows) {
    const list = recentOf.get(r.job) ?? []
    list.push({
      id: Number(r.id),
      status: r.status,
      startedAt: r.started_at,
      durationMs: r.finished_at ? r.finished_at.getTime() - r.started_at.getTime() : null,
      error: r.error?.split('\n')[0]?.slice(0, 200) ?? null,
    })
    recentOf.set(r.job, list)
  }
  const scheduleOf = new Map(input.schedules.map((s) => [s.job, s]))
  const known = new Map(input.jobs.map((j) => [j.id, j]))
  const ids = [...new Set([...known.keys(), ...scheduleOf.keys(), ...recentOf.keys()])].sort()
  return ids.map((job) => {
    const schedule = scheduleOf.get(job)
    const aggregate = aggregateOf.get(job)
    const recent = recentOf.get(job) ?? []
    return {
      job,
      description: known.get(job)?.description,
      critical: known.get(job)?.critical === true,
      workflowFile: schedule?.workflowFile,
      schedule: schedule ? describeSchedule(schedule) : 'no workflow',
      nextRun: schedule ? nextRun(schedule, now) : undefined,
      lastRun: recent.at(-1),
      successRate: aggregate?.finished ? aggregate.succeeded / aggregate.finished : undefined,
      finishedRuns: aggregate?.finished ?? 0,
      medianMs: aggregate?.median_ms ?? undefined,
      paused: pauseFor(job, pauses, known.get(job)?.exemptFromPauseAll !== undefined),
      recent,
      ...(rows.lateness?.get(job) ? { lateness: rows.lateness.get(job) } : {}),
    }
  })
}

/** `2h 05m ago` / `in 3m`: a short distance between two times. */
export function relativeTime(at: Date, now: Date): string {
  const ms = at.getTime() - now.getTime()
  const text = formatMs(Math.abs(ms)).replace(/\.\d+s$/, 's')
  return ms < 0 ? `${text} ago` : `in ${text}`
}

/** `2026-11-28 06:08 UTC` */
export function utcMinute(at: Date): string {
  return `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`
}

/** A success rate as a whole percentage, or `-`. */
export function percent(rate: number | undefined): string {
  return rate === undefined ? '-' : `${Math.floor(rate * 1000) / 10}%`
}
