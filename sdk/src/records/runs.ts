import os from 'node:os'
import type { Sql } from 'postgres'

/** Final statuses of a run (CONTRACT §6), plus `running` while it is under way. */
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
}

/** One row of `jobs.runs` as the CLI shows it (CONTRACT §6 `history --json`). */
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
    insert into jobs.runs (job, status, trigger, attempt, dry_run, run_url, host, pid)
    values (${run.job}, 'running', ${run.trigger}, ${run.attempt}, ${run.dryRun}, ${run.runUrl ?? null},
            ${os.hostname()}, ${process.pid})
    returning id`
  return Number(row!.id)
}

/** Records a run that did not run (lock held elsewhere, or paused), with the reason in `note`. */
export async function recordSkipped(sql: Sql, run: RunStart, note: string): Promise<number> {
  const [row] = await sql<{ id: string }[]>`
    insert into jobs.runs (job, status, trigger, attempt, dry_run, run_url, host, pid, finished_at, note, stats)
    values (${run.job}, 'skipped', ${run.trigger}, ${run.attempt}, ${run.dryRun}, ${run.runUrl ?? null},
            ${os.hostname()}, ${process.pid}, now(), ${note}, ${sql.json({ reason: note })})
    returning id`
  return Number(row!.id)
}

/** Closes a run with its outcome. */
export async function finishRun(
  sql: Sql,
  id: number,
  outcome: { status: Exclude<RunStatus, 'running'>; stats?: unknown; error?: string; note?: string },
): Promise<void> {
  await sql`
    update jobs.runs set status = ${outcome.status}, finished_at = clock_timestamp(),
      stats = ${outcome.stats === undefined ? null : sql.json(outcome.stats as never)},
      error = ${outcome.error ?? null}, note = coalesce(${outcome.note ?? null}, note)
    where id = ${id}`
}

/** Marks the run alive; the heartbeat lets others tell a live run from a dead one. */
export async function heartbeat(sql: Sql, id: number): Promise<void> {
  await sql`update jobs.runs set heartbeat_at = now() where id = ${id} and status = 'running'`
}

/**
 * Closes runs of `job` left `running` by a process that died. Call it while holding the job's lock: then no other
 * run of the job can be alive, whatever its heartbeat says. Returns the ids closed.
 */
export async function closeDeadRuns(sql: Sql, job: string, exceptId?: number): Promise<number[]> {
  const rows = await sql<{ id: string }[]>`
    update jobs.runs set status = 'failed', finished_at = heartbeat_at,
      error = coalesce(error, 'the process ended without recording an outcome (killed?)'),
      note = 'closed by a later run: no heartbeat since ' || to_char(heartbeat_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
    where job = ${job} and status = 'running' and id is distinct from ${exceptId ?? null}
    returning id`
  return rows.map((r) => Number(r.id))
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

/** Reads history newest first, optionally for one job. */
export async function listRuns(sql: Sql, options: { job?: string; limit?: number } = {}): Promise<RunRecord[]> {
  const rows = await sql<
    {
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
    }[]
  >`
    select id, job, status, trigger, attempt, started_at, finished_at, dry_run, stats, error, run_url
    from jobs.runs
    ${options.job ? sql`where job = ${options.job}` : sql``}
    order by started_at desc, id desc
    limit ${options.limit ?? 20}`
  return rows.map((r) => ({
    id: Number(r.id),
    job: r.job,
    status: r.status,
    trigger: r.trigger,
    attempt: r.attempt,
    startedAt: r.started_at.toISOString(),
    finishedAt: r.finished_at?.toISOString() ?? null,
    durationMs: r.finished_at ? r.finished_at.getTime() - r.started_at.getTime() : null,
    dryRun: r.dry_run,
    stats: r.stats,
    error: r.error,
    runUrl: r.run_url,
  }))
}
