import { parse } from 'yaml'

/** What the retry workflow knows about a completed job workflow run (fields of the `workflow_run` event). */
export interface CompletedRun {
  /** The workflow's `name:` (a job id such as `cleanup/sessions`). */
  workflow: string
  /** `success`, `failure`, `timed_out`, `cancelled`, `skipped`, … */
  conclusion: string
  /** The attempt that just completed (1 for the first run). */
  attempt: number
  /** The event that started the run: `schedule`, `workflow_dispatch`, … */
  event: string
  /** The branch the run ran on. */
  branch: string | undefined
}

/**
 * Which runs may be re-run; defaults: 3 attempts in total, schedule and workflow_dispatch runs, 60 s base delay, a
 * wait of at most retryDelayLimitSeconds.
 */
export interface RetryPolicy {
  /** Workflow names marked retryable (the `on.workflow_run.workflows` list of retry.yml). */
  retryable: readonly string[]
  /** The repository's default branch: runs elsewhere are never re-run. */
  defaultBranch: string
  /** Attempts in total, the first run included (default 3). */
  maxAttempts?: number
  /** Events whose runs may be re-run (default schedule and workflow_dispatch). */
  events?: readonly string[]
  /** Wait before re-running attempt n+1 is `delaySeconds × n` (default 60), never more than `maxDelaySeconds`. */
  delaySeconds?: number
  /** The longest wait (default retryDelayLimitSeconds). */
  maxDelaySeconds?: number
}

/** The outcome of decideRetry: re-run (with the attempt it starts and how long to wait first) or not, and why. */
export type RetryDecision =
  | { retry: true; reason: string; nextAttempt: number; delaySeconds: number }
  | { retry: false; reason: string }

/** Conclusions worth a re-run: a cancelled run was stopped on purpose, a skipped one never ran. */
export const retryConclusions: readonly string[] = ['failure', 'timed_out']

/** Default attempts in total (the first run plus two re-runs). */
export const defaultMaxAttempts = 3

/**
 * The longest wait before a re-run, 300 s: retry.yml's job has 10 minutes for runner start, checkout, setup (an
 * install on a cache miss), this wait and the API call with its own retries, so the wait must leave half of it.
 */
export const retryDelayLimitSeconds = 300

/** Decides whether the failed jobs of a completed workflow run are re-run; pure, so every rule is unit-tested. */
export function decideRetry(run: CompletedRun, policy: RetryPolicy): RetryDecision {
  const maxAttempts = policy.maxAttempts ?? defaultMaxAttempts
  const events = policy.events ?? ['schedule', 'workflow_dispatch']
  if (!policy.retryable.includes(run.workflow))
    return { retry: false, reason: `${run.workflow} is not marked retryable` }
  if (!retryConclusions.includes(run.conclusion))
    return { retry: false, reason: `the run's conclusion is ${run.conclusion || 'unknown'}, not failure or timed_out` }
  if (!events.includes(run.event))
    return { retry: false, reason: `runs started by ${run.event || 'an unknown event'} are not re-run` }
  if (run.branch !== policy.defaultBranch)
    return { retry: false, reason: `the run is on ${run.branch ?? 'no branch'}, not ${policy.defaultBranch}` }
  if (!Number.isInteger(run.attempt) || run.attempt < 1)
    return { retry: false, reason: `the run's attempt is not a positive number (${run.attempt})` }
  if (run.attempt >= maxAttempts)
    return { retry: false, reason: `attempt ${run.attempt} of ${maxAttempts} failed: no attempts left` }
  const nextAttempt = run.attempt + 1
  return {
    retry: true,
    reason: `attempt ${run.attempt} of ${maxAttempts} ended with ${run.conclusion}: re-running its failed jobs as attempt ${nextAttempt}`,
    nextAttempt,
    delaySeconds: Math.min((policy.delaySeconds ?? 60) * run.attempt, policy.maxDelaySeconds ?? retryDelayLimitSeconds),
  }
}

/** The workflow names retry.yml subscribes to (`on.workflow_run.workflows`): the jobs marked retryable. */
export function retryableWorkflows(retryWorkflowYaml: string): string[] {
  const doc = parse(retryWorkflowYaml) as { on?: { workflow_run?: { workflows?: unknown } } } | null
  const list = doc?.on?.workflow_run?.workflows
  if (!Array.isArray(list) || !list.every((w) => typeof w === 'string'))
    throw new Error('retry.yml has no on.workflow_run.workflows list of workflow names')
  return list
}
