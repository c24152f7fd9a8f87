import type { FinishedRun } from '../records/runs.ts'

/** A job whose latest finished runs all failed. */
export interface FailingJob {
  job: string
  failures: number
  since: Date
  lastError: string | undefined
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
