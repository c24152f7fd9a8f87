import type { Sql } from 'postgres'

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
