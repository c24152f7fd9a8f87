import os from 'node:os'
import type { Sql, TransactionSql } from 'postgres'
import { processAlive } from '../runtime/process.ts'

/** Final statuses of a run (docs/reference.md), plus `running` while it is under way. */
export type RunStatus = 'running' | 'succeeded' | 'failed' | 'timed_out' | 'cancelled' | 'skipped'

/** What started a run. */
export type Trigger = 'schedule' | 'workflow_dispatch' | 'rerun' | 'local' | 'scheduler' | (string & {})

/** The fields recorded when a run starts. */
export interface RunStart {
  job: string
  trigger: Trigger
  attempt: number
  dryRun: boolean
  runUrl: string | undefined
  /** The schedule slot the run serves (the latest fire time at or before its start), when the job has a schedule. */
  slot?: Date | undefined
}

/** One row of `jobs.runs` as the CLI shows it (`history --json`, docs/reference.md). */
export interface RunRecord {
  id: number
  job: string
  status: RunStatus
  trigger: string
  attempt: number
  startedAt: string
  finishedAt: string | null
  durationMs: number | null
  dryRun: boolean
  stats: Record<string, unknown> | null
  error: string | null
  runUrl: string | null
}

/** Inserts a `running` row and returns its id. */
export async function startRun(sql: Sql, run: RunStart): Promise<number> {
  const [row] = await sql<{ id: string }[]>`
    insert into jobs.runs (job, status, trigger, attempt, dry_run, run_url, host, pid, slot)
    values (${run.job}, 'running', ${run.trigger}, ${run.attempt}, ${run.dryRun}, ${run.runUrl ?? null},
            ${os.hostname()}, ${process.pid}, ${run.slot ?? null})
    returning id`
  return Number(row!.id)
}

/**
 * Records a run that did not run (lock held elsewhere, paused, slot already served), with the reason in `note` and
 * `stats.reason` (plus any `stats` given).
 */
export async function recordSkipped(
  sql: Sql,
  run: RunStart,
  note: string,
  stats: Record<string, unknown> = {},
): Promise<number> {
  const [row] = await sql<{ id: string }[]>`
    insert into jobs.runs (job, status, trigger, attempt, dry_run, run_url, host, pid, finished_at, note, stats, slot)
    values (${run.job}, 'skipped', ${run.trigger}, ${run.attempt}, ${run.dryRun}, ${run.runUrl ?? null},
            ${os.hostname()}, ${process.pid}, now(), ${note}, ${sql.json({ reason: note, ...stats } as never)},
            ${run.slot ?? null})
    returning id`
  return Number(row!.id)
}

/** The succeeded run that served `slot` of `job`, if one did. */
export async function servedSlot(
  sql: Sql,
  job: string,
  slot: Date,
): Promise<{ id: number; startedAt: Date } | undefined> {
  const [row] = await sql<{ id: string; started_at: Date }[]>`
    select id, started_at from jobs.runs
    where job = ${job} and slot = ${slot} and status = 'succeeded' and not dry_run
    order by id limit 1`
  return row ? { id: Number(row.id), startedAt: row.started_at } : undefined
}

/** How often a running run marks itself alive (10 s). */
export const heartbeatEveryMs = 10_000

/** A `running` row whose heartbeat is older than this (60 s) belongs to a run that stopped beating: dead. */
export const staleAfterMs = 60_000

/**
 * Closes a run with its outcome, only while it is still `running`: a run another one closed as dead can never
 * overwrite that afterwards. Returns the run's duration as history records it, or undefined when the row was no
 * longer running.
 */
export async function finishRun(
  sql: Sql | TransactionSql,
  id: number,
  outcome: { status: Exclude<RunStatus, 'running'>; stats?: unknown; error?: string; note?: string },
): Promise<{ durationMs: number } | undefined> {
  const [row] = await sql<{ started_at: Date; finished_at: Date }[]>`
    update jobs.runs set status = ${outcome.status}, finished_at = clock_timestamp(),
      stats = ${outcome.stats === undefined ? null : sql.json(outcome.stats as never)},
      error = ${outcome.error ?? null}, note = coalesce(${outcome.note ?? null}, note)
    where id = ${id} and status = 'running'
    returning started_at, finished_at`
  return row ? { durationMs: runDurationMs(row.started_at, row.finished_at)! } : undefined
}

/**
 * A run's duration, the one measure the completion line, history, status and alerts all show: its row's
 * `finished_at - started_at` (both the database's clock) in whole milliseconds; null while it runs.
 */
export function runDurationMs(startedAt: Date, finishedAt: Date | null): number | null {
  return finishedAt ? Math.max(0, finishedAt.getTime() - startedAt.getTime()) : null
}

/** The recorded duration of run `id` (null while it runs, undefined when there is no such run). */
export async function recordedDuration(sql: Sql | TransactionSql, id: number): Promise<number | null | undefined> {
  const [row] = await sql<{ started_at: Date; finished_at: Date | null }[]>`
    select started_at, finished_at from jobs.runs where id = ${id}`
  return row ? runDurationMs(row.started_at, row.finished_at) : undefined
}

/** Marks the run alive; false when its row is no longer `running` (another run closed it as dead). */
export async function heartbeat(sql: Sql, id: number): Promise<boolean> {
  const rows = await sql`update jobs.runs set heartbeat_at = now() where id = ${id} and status = 'running' returning 1`
  return rows.length > 0
}

/** A `running` row of another process that still beats: its run is alive. */
export interface LiveRun {
  id: number
  host: string | null
  pid: number | null
  heartbeatAgoMs: number
}

/**
 * Call while holding the job's lock. Closes the job's `running` rows whose process is gone (same host, pid no longer
 * alive) or whose heartbeat is older than `staleAfterMs`, and returns the ids closed plus the runs that still beat
 * (a run that lost its lock but not its process): the caller must not start beside those.
 */
export async function closeDeadRuns(
  sql: Sql,
  job: string,
  options: { host?: string; isAlive?: (pid: number) => boolean } = {},
): Promise<{ closed: number[]; live: LiveRun[] }> {
  const host = options.host ?? os.hostname()
  const isAlive = options.isAlive ?? processAlive
  const running = await sql<{ id: string; host: string | null; pid: number | null; ago_ms: number }[]>`
    select id, host, pid, extract(epoch from now() - heartbeat_at) * 1000 as ago_ms
    from jobs.runs where job = ${job} and status = 'running'`
  const dead: number[] = []
  const live: LiveRun[] = []
  for (const r of running) {
    const gone = r.host === host && r.pid !== null && r.pid !== process.pid && !isAlive(r.pid)
    if (gone || r.ago_ms > staleAfterMs) dead.push(Number(r.id))
    else live.push({ id: Number(r.id), host: r.host, pid: r.pid, heartbeatAgoMs: Math.round(r.ago_ms) })
  }
  if (dead.length === 0) return { closed: [], live }
  const rows = await sql<{ id: string }[]>`
    update jobs.runs set status = 'failed', finished_at = heartbeat_at,
      error = coalesce(error, 'the process ended without recording an outcome (killed?)'),
      note = 'closed by a later run: no heartbeat since ' || to_char(heartbeat_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
    where id = any(${dead}::bigint[]) and status = 'running'
    returning id`
  return { closed: rows.map((r) => Number(r.id)), live }
}

/** Closes `running` rows of any job whose heartbeat is older than `staleSeconds` (default 5 minutes). */
export async function closeStaleRuns(sql: Sql, staleSeconds = 300): Promise<number[]> {
  const rows = await sql<{ id: string }[]>`
    update jobs.runs set status = 'failed', finished_at = heartbeat_at,
      error = coalesce(error, 'the process ended without recording an outcome (killed?)'),
      note = 'closed: no heartbeat since ' || to_char(heartbeat_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
    where status = 'running' and heartbeat_at < now() - make_interval(secs => ${staleSeconds})
    returning id`
  return rows.map((r) => Number(r.id))
}

interface RunRow {
  id: string
  job: string
  status: RunStatus
  trigger: string
  attempt: number
  started_at: Date
  finished_at: Date | null
  dry_run: boolean
  stats: Record<string, unknown> | null
  error: string | null
  run_url: string | null
}

const toRecord = (r: RunRow): RunRecord => ({
  id: Number(r.id),
  job: r.job,
  status: r.status,
  trigger: r.trigger,
  attempt: r.attempt,
  startedAt: r.started_at.toISOString(),
  finishedAt: r.finished_at?.toISOString() ?? null,
  durationMs: runDurationMs(r.started_at, r.finished_at),
  dryRun: r.dry_run,
  stats: r.stats,
  error: r.error,
  runUrl: r.run_url,
})

/** Reads history newest first, optionally for one job. */
export async function listRuns(sql: Sql, options: { job?: string; limit?: number } = {}): Promise<RunRecord[]> {
  const rows = await sql<RunRow[]>`
    select id, job, status, trigger, attempt, started_at, finished_at, dry_run, stats, error, run_url
    from jobs.runs
    ${options.job ? sql`where job = ${options.job}` : sql``}
    order by started_at desc, id desc
    limit ${options.limit ?? 20}`
  return rows.map(toRecord)
}

/** One run of history with its note (why it was skipped or closed), or undefined when there is no such run. */
export async function getRun(sql: Sql, id: number): Promise<(RunRecord & { note: string | null }) | undefined> {
  const [row] = await sql<(RunRow & { note: string | null })[]>`
    select id, job, status, trigger, attempt, started_at, finished_at, dry_run, stats, error, run_url, note
    from jobs.runs where id = ${id}`
  return row ? { ...toRecord(row), note: row.note } : undefined
}

/** The status a run's row holds now (undefined when there is no such run). */
export async function runStatus(sql: Sql, id: number): Promise<RunStatus | undefined> {
  const [row] = await sql<{ status: RunStatus }[]>`select status from jobs.runs where id = ${id}`
  return row?.status
}

/**
 * The slots among `slots` that a run already serves or is serving (a succeeded or a `running` run of the job with that
 * slot), keyed as `slotKey` does: a dispatcher leaves those alone.
 */
export async function takenSlots(sql: Sql, slots: readonly { job: string; slot: Date }[]): Promise<Set<string>> {
  if (slots.length === 0) return new Set()
  const rows = await sql<{ job: string; slot: Date }[]>`
    select distinct r.job, r.slot from jobs.runs r
    join unnest(${slots.map((s) => s.job)}::text[], ${slots.map((s) => s.slot.toISOString())}::timestamptz[]) as w(job, slot)
      on r.job = w.job and r.slot = w.slot
    where r.status in ('succeeded', 'running') and not r.dry_run`
  return new Set(rows.map((r) => `${r.job}@${r.slot.toISOString()}`))
}

/** One real run's timing, as lateness and missed-run checks read it. */
export interface RunTiming {
  job: string
  trigger: string
  status: RunStatus
  startedAt: Date
  slot: Date | null
  runUrl: string | null
}

/**
 * The newest real (not dry-run) runs of every job that started in [since, until], at most `perJob` each (default 100),
 * oldest first per job: the history lateness is learned from.
 */
export async function recentRunTimings(
  sql: Sql,
  window: { since: Date; until: Date; perJob?: number },
): Promise<Map<string, RunTiming[]>> {
  const rows = await sql<
    { job: string; trigger: string; status: RunStatus; started_at: Date; slot: Date | null; run_url: string | null }[]
  >`
    select job, trigger, status, started_at, slot, run_url from (
      select job, trigger, status, started_at, slot, run_url,
             row_number() over (partition by job order by started_at desc, id desc) as n
      from jobs.runs
      where not dry_run and started_at >= ${window.since} and started_at <= ${window.until}
    ) r
    where n <= ${window.perJob ?? 100}
    order by job, started_at`
  const byJob = new Map<string, RunTiming[]>()
  for (const r of rows) {
    const list = byJob.get(r.job) ?? []
    list.push({
      job: r.job,
      trigger: r.trigger,
      status: r.status,
      startedAt: r.started_at,
      slot: r.slot,
      runUrl: r.run_url,
    })
    byJob.set(r.job, list)
  }
  return byJob
}

/** One finished run, newest first, as the failure-streak check reads it. */
export interface FinishedRun {
  status: string
  startedAt: Date
  error: string | null
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

/** The median duration in ms of every job's succeeded runs that started in the last `days` days. */
export async function medianDurations(sql: Sql, days: number): Promise<Map<string, number>> {
  const rows = await sql<{ job: string; ms: number }[]>`
    select job, percentile_cont(0.5) within group (order by extract(epoch from finished_at - started_at) * 1000)::float8 as ms
    from jobs.runs
    where status = 'succeeded' and finished_at is not null and started_at > now() - make_interval(days => ${days})
    group by job`
  return new Map(rows.map((r) => [r.job, r.ms]))
}

/** The runs under way now: `running` rows whose heartbeat is fresher than `staleAfterMs`, oldest first. */
export async function liveRuns(sql: Sql): Promise<{ id: number; job: string; startedAt: Date }[]> {
  const rows = await sql<{ id: string; job: string; started_at: Date }[]>`
    select id, job, started_at from jobs.runs
    where status = 'running' and coalesce(heartbeat_at, started_at) > now() - make_interval(secs => ${staleAfterMs / 1000})
    order by started_at, id`
  return rows.map((r) => ({ id: Number(r.id), job: r.job, startedAt: r.started_at }))
}
