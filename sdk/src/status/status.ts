import type { Sql } from 'postgres'
import { type Incident, openIncidents } from '../alerting/incidents.ts'
import { activePauses, type Pause, pauseFor } from '../records/pauses.ts'
import { runDurationMs } from '../records/runs.ts'
import { loadLateness, type ScheduleLateness } from '../schedules/lateness.ts'
import { checkFailing } from '../schedules/missed.ts'
import { describeSchedule, type JobSchedule, nextRun } from '../schedules/schedules.ts'
import { formatMs } from '../text/duration.ts'
import { relativeTime } from '../text/relative.ts'

export { relativeTime }

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
  /** The first fire time after the last run's start, when it has passed: the slot no run has served yet. */
  dueSince?: Date
  lastRun: StatusRun | undefined
  /** Succeeded / finished runs over the window (skipped and dry runs left out); undefined without runs. */
  successRate: number | undefined
  finishedRuns: number
  /** Median duration of succeeded runs over the window (ms). */
  medianMs: number | undefined
  paused: Pause | undefined
  /** Why the job keeps running under a pause of all jobs (its definition's exemptFromPauseAll). */
  exemptFromPauseAll?: string
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

/** Something an operator should look at, first on the status page: an alert, a late schedule, a pause. */
export interface OpenIncident {
  /** `alert`/`security`: an open incident of jobs.incidents; `late`, `failing`, `paused`: read from history. */
  kind: 'alert' | 'security' | 'late' | 'failing' | 'paused'
  severity: 'critical' | 'warning' | 'info'
  job: string | null
  title: string
  detail: string | null
  /** When it began (opened, the missed slot, the first failure of the streak, the pause). */
  since: Date | null
  /** The incident's key in jobs.incidents, or `late:<job>`, `failing:<job>`, `paused:<target>`. */
  key: string
  /** Paused: when it ends. */
  until?: Date
}

/** The whole status: what needs attention first, then every job. */
export interface StatusReport {
  generatedAt: Date
  openIncidents: OpenIncident[]
  jobs: JobStatus[]
  /** Real runs per UTC day of the last 14 days, oldest first (the page's chart). */
  daily: DailyRuns[]
}

/** How the real runs of one UTC day ended. */
export interface DailyRuns {
  day: string
  succeeded: number
  failed: number
  skipped: number
}

/** Days the runs chart covers. */
export const dailyDays = 14

/** Real (not dry) runs per UTC day over the `dailyDays` days up to `now`, every day present, oldest first. */
export async function loadDailyRuns(sql: Sql, now: Date): Promise<DailyRuns[]> {
  const first = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - (dailyDays - 1)))
  const rows = await sql<{ day: Date; succeeded: number; failed: number; skipped: number }[]>`
    select date_trunc('day', started_at at time zone 'UTC') as day,
      count(*) filter (where status = 'succeeded')::int as succeeded,
      count(*) filter (where status in ('failed', 'timed_out', 'cancelled'))::int as failed,
      count(*) filter (where status = 'skipped')::int as skipped
    from jobs.runs where not dry_run and started_at >= ${first} and started_at <= ${now}
    group by 1`
  const byDay = new Map(rows.map((r) => [r.day.toISOString().slice(0, 10), r]))
  return Array.from({ length: dailyDays }, (_, i) => {
    const day = new Date(first.getTime() + i * 86_400_000).toISOString().slice(0, 10)
    const r = byDay.get(day)
    return { day, succeeded: r?.succeeded ?? 0, failed: r?.failed ?? 0, skipped: r?.skipped ?? 0 }
  })
}

/** Reads the whole status: open incidents from jobs.incidents plus what history says, then every job. */
export async function loadStatusReport(sql: Sql, input: StatusInput): Promise<StatusReport> {
  const now = input.now ?? new Date()
  const [jobs, incidents, daily] = await Promise.all([
    loadStatus(sql, { ...input, now }),
    openIncidents(sql, now),
    loadDailyRuns(sql, now),
  ])
  return buildReport(jobs, incidents, now, daily)
}

/** Failures in a row (of the newest finished runs) that make a failing streak on the status page. */
export const failingStreak = 2

const severityRank = { critical: 0, warning: 1, info: 2 }
const kindRank = { security: 0, alert: 1, failing: 2, late: 3, paused: 4 }

/**
 * The status report from the jobs' status and the open incidents: incidents first (most severe, then oldest), a
 * failing streak or a late schedule only where no open incident of that job says so already, then the pauses.
 */
export function buildReport(
  jobs: readonly JobStatus[],
  incidents: readonly Incident[],
  now: Date,
  daily: DailyRuns[] = [],
): StatusReport {
  const open: OpenIncident[] = incidents.map((i) => ({
    kind: i.key.startsWith('security:') ? 'security' : 'alert',
    severity: i.severity,
    job: i.job,
    title: i.title,
    detail: i.detail,
    since: i.openedAt ?? i.lastFailureAt,
    key: i.key,
  }))
  // The job an incident is about: a failed run's (`job:<id>`), the watchdog's (`watchdog:missed:<id>`), else its own.
  const about = (i: Incident) => /^(?:job|watchdog:(?:failing|missed|stopped)):(.+)$/.exec(i.key)?.[1] ?? i.job
  const covered = new Set(incidents.map(about))
  for (const j of jobs) {
    if (j.paused) continue
    const finished = j.recent.filter((r) => r.status !== 'skipped' && r.status !== 'running').reverse()
    const failing = checkFailing(j.job, finished, failingStreak)
    if (failing && !covered.has(j.job))
      open.push({
        kind: 'failing',
        severity: j.critical ? 'critical' : 'warning',
        job: j.job,
        title: `${j.job} failed its last ${failing.failures} runs`,
        detail: failing.lastError ?? null,
        since: failing.since,
        key: `failing:${j.job}`,
      })
    const late = lateness(j, now)
    if (late && !covered.has(j.job)) open.push(late)
  }
  const pauses = new Map<string, Pause>()
  for (const j of jobs) if (j.paused) pauses.set(j.paused.target, j.paused)
  for (const p of pauses.values()) {
    const exempt = p.target === 'all' ? jobs.filter((j) => j.exemptFromPauseAll).map((j) => j.job) : []
    open.push({
      kind: 'paused',
      severity: 'info',
      job: p.target === 'all' ? null : p.target,
      title: `${p.target === 'all' ? 'all jobs' : p.target} paused until ${utcMinute(p.until)}: ${p.reason}`,
      detail:
        [
          p.createdBy ? `by ${p.createdBy}` : undefined,
          exempt.length ? `exempt, still running: ${exempt.join(', ')}` : undefined,
        ]
          .filter(Boolean)
          .join('; ') || null,
      since: p.createdAt,
      key: `paused:${p.target}`,
      until: p.until,
    })
  }
  open.sort(
    (a, b) =>
      severityRank[a.severity] - severityRank[b.severity] ||
      kindRank[a.kind] - kindRank[b.kind] ||
      (a.since?.getTime() ?? 0) - (b.since?.getTime() ?? 0),
  )
  return { generatedAt: now, openIncidents: open, jobs: [...jobs], daily }
}

/**
 * A scheduled job that has run before but not since its latest fire time, longer ago than its lateness allowance:
 * late (within three intervals) or stopped (longer).
 */
function lateness(j: JobStatus, now: Date): OpenIncident | undefined {
  const l = j.lateness
  if (!l || !j.lastRun) return undefined
  const slot = j.dueSince
  if (!slot) return undefined
  const overdueMs = now.getTime() - slot.getTime()
  if (overdueMs <= l.allowanceMs) return undefined
  const stopped = overdueMs > 3 * l.intervalMs
  return {
    kind: 'late',
    severity: j.critical ? 'critical' : 'warning',
    job: j.job,
    title: stopped
      ? `${j.job} has stopped: last run ${relativeTime(j.lastRun.startedAt, now)} (${utcMinute(j.lastRun.startedAt)})`
      : `${j.job} is late: its slot of ${relativeTime(slot, now)} has no run (${utcMinute(slot)})`,
    detail: `allowance ${formatMs(l.allowanceMs)} (${l.basis})`,
    since: slot,
    key: `late:${j.job}`,
  }
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
      durationMs: runDurationMs(r.started_at, r.finished_at),
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
    const lastStart = recent.at(-1)?.startedAt
    const due = schedule && lastStart ? nextRun(schedule, lastStart) : undefined
    const dueSince = due && due.getTime() <= now.getTime() ? due : undefined
    const exempt = known.get(job)?.exemptFromPauseAll
    return {
      job,
      description: known.get(job)?.description,
      critical: known.get(job)?.critical === true,
      workflowFile: schedule?.workflowFile,
      schedule: schedule ? describeSchedule(schedule) : 'no workflow',
      nextRun: schedule ? nextRun(schedule, now) : undefined,
      ...(dueSince ? { dueSince } : {}),
      lastRun: recent.at(-1),
      successRate: aggregate?.finished ? aggregate.succeeded / aggregate.finished : undefined,
      finishedRuns: aggregate?.finished ?? 0,
      medianMs: aggregate?.median_ms ?? undefined,
      paused: pauseFor(job, pauses, exempt !== undefined),
      ...(exempt !== undefined ? { exemptFromPauseAll: exempt } : {}),
      recent,
      ...(rows.lateness?.get(job) ? { lateness: rows.lateness.get(job) } : {}),
    }
  })
}

/** `2026-11-28 06:08 UTC` */
export function utcMinute(at: Date): string {
  return `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`
}

/** A success rate as a whole percentage, or `-`. */
export function percent(rate: number | undefined): string {
  return rate === undefined ? '-' : `${Math.floor(rate * 1000) / 10}%`
}
