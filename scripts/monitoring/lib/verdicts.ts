import type { DispatchClaim, GitHubWorkflowRun, JobSchedule, ScheduleLateness } from '@admin-jobs/sdk/platform'
import { nextRun } from '@admin-jobs/sdk/platform'

/** Everything the watchdog knows about one scheduled job when it judges it. */
export interface JobView {
  job: string
  schedule: JobSchedule
  critical: boolean
  /** Start of the latest real run (any outcome, skipped included: the schedule is alive). */
  lastStart: Date | undefined
  /** Start of the latest run GitHub's own cron started (its `schedule` event). */
  lastCronStart: Date | undefined
  /** Fire times before this are not expected (first time seen, end of a pause). */
  watchFrom: Date | undefined
  lateness: ScheduleLateness
  /**
   * The oldest dispatch claimed for the job (by a dispatcher or the watchdog, not refused) since its latest run
   * started: the one that has waited longest for a run (see firstUnansweredClaim).
   */
  claim: DispatchClaim | undefined
}

/** What the watchdog makes of a job. */
export type Verdict =
  | { kind: 'on-time' }
  /** Past its allowance: `catch-up` asks for a dispatch; `dispatched` waits for one; `warn` alerts (no token). */
  | { kind: 'late'; expectedAt: Date; overdueMs: number; action: 'catch-up' | 'dispatched' | 'github-late' | 'warn' }
  | { kind: 'stopped'; expectedAt: Date | undefined; reason: string }

/** Settings of the verdicts (docs/monitoring.md): defaults 15 minutes for a dispatched run to start, 12 hours bound. */
export interface VerdictRules {
  /** A dispatched run that has not started this long after its dispatch means the job has stopped (default 15m). */
  dispatchStartMs: number
  /** Whether the watchdog can dispatch (a token and a repository). */
  canDispatch: boolean
  /** Without a token: a job this long past its allowance is taken for stopped even in a GitHub-late episode. */
  hardBoundMs: number
}

/** Defaults of VerdictRules. */
export const defaultVerdictRules: Omit<VerdictRules, 'canDispatch'> = {
  dispatchStartMs: 15 * 60_000,
  hardBoundMs: 12 * 3_600_000,
}

const iso = (d: Date) => `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`

/** The fire time a job's next run was due at: the first after its latest run (or after watchFrom). */
export function expectedAt(view: Pick<JobView, 'schedule' | 'lastStart' | 'watchFrom'>): Date | undefined {
  const from = [view.lastStart, view.watchFrom]
    .filter((d): d is Date => d !== undefined)
    .reduce<Date | undefined>((a, b) => (a && a > b ? a : b), undefined)
  return from ? nextRun(view.schedule, from) : undefined
}

/**
 * Judges one job at `now`. `githubRuns` are its workflow's newest runs on GitHub (read only for a job past its
 * allowance); `githubLate` tells whether GitHub's cron is running late for most jobs (see githubLateness).
 */
export function judge(
  view: JobView,
  now: Date,
  rules: VerdictRules,
  context: { githubLate: boolean; githubRuns?: readonly GitHubWorkflowRun[] },
): Verdict {
  const due = expectedAt(view)
  const { claim } = view
  const lastStart = view.lastStart?.getTime() ?? Number.NEGATIVE_INFINITY
  // A dispatch that no run followed: GitHub took it and nothing started (or everything failed before recording).
  if (claim && claim.status !== 'refused' && claim.claimedAt.getTime() > lastStart) {
    const waited = now.getTime() - claim.claimedAt.getTime()
    if (waited > rules.dispatchStartMs)
      return {
        kind: 'stopped',
        expectedAt: due,
        reason: `slot ${iso(claim.slot)} was dispatched at ${iso(claim.claimedAt)} (by ${claim.claimedBy}) and no run has started since`,
      }
  }
  if (!due) return { kind: 'on-time' }
  const overdueMs = now.getTime() - due.getTime()
  if (overdueMs <= view.lateness.allowanceMs) return { kind: 'on-time' }
  const onGitHub = (context.githubRuns ?? []).filter((r) => new Date(r.created_at) >= due)
  const failed = onGitHub.find((r) => r.status === 'completed' && r.conclusion !== 'success')
  if (failed && !onGitHub.some((r) => r.status !== 'completed'))
    return {
      kind: 'stopped',
      expectedAt: due,
      reason: `its workflow ran on GitHub at ${iso(new Date(failed.created_at))} (${failed.conclusion}) but recorded no run: it fails before the job starts (${failed.html_url})`,
    }
  if (onGitHub.length) return { kind: 'late', expectedAt: due, overdueMs, action: 'dispatched' }
  if (rules.canDispatch) {
    const claimed = claim && claim.status !== 'refused' && claim.claimedAt.getTime() > lastStart
    return { kind: 'late', expectedAt: due, overdueMs, action: claimed ? 'dispatched' : 'catch-up' }
  }
  // Without a token a dropped tick looks like a stop until the next one is missed too.
  const beyond = overdueMs - view.lateness.allowanceMs
  if (
    beyond > Math.min(view.lateness.intervalMs, rules.hardBoundMs) &&
    (!context.githubLate || beyond > rules.hardBoundMs)
  )
    return {
      kind: 'stopped',
      expectedAt: due,
      reason: `no run since ${view.lastStart ? iso(view.lastStart) : 'the watchdog first saw it'}, and the next fire time passed too`,
    }
  return { kind: 'late', expectedAt: due, overdueMs, action: context.githubLate ? 'github-late' : 'warn' }
}

/** Of a job's claims (any order), the oldest not refused and made after its latest run started. */
export function firstUnansweredClaim(
  claims: readonly DispatchClaim[],
  lastStart: Date | undefined,
): DispatchClaim | undefined {
  let first: DispatchClaim | undefined
  for (const c of claims) {
    if (c.status === 'refused' || (lastStart && c.claimedAt <= lastStart)) continue
    if (!first || c.claimedAt < first.claimedAt) first = c
  }
  return first
}

/** GitHub's cron running late for most jobs: the jobs behind, and by how much at worst. */
export interface GitHubLateness {
  late: { job: string; behindMs: number }[]
  /** Jobs whose cron should have fired by now (the late ones among them). */
  due: number
}

/** Default: GitHub's cron counts as late for a job once it is an hour behind (its daily crons run 40 minutes late). */
export const githubLateAfterMs = 3_600_000

/**
 * Whether GitHub's cron is running late: among the hourly and slower jobs whose cron should have fired by now (judged
 * from the runs its `schedule` event started), at least two and at least half are more than `lateAfterMs` behind.
 * Sub-hourly jobs are left out: a late tick of theirs still starts a run for a later slot, so they look on time.
 */
export function githubLateness(
  views: readonly JobView[],
  now: Date,
  lateAfterMs = githubLateAfterMs,
): GitHubLateness | undefined {
  let due = 0
  const late: GitHubLateness['late'] = []
  for (const v of views) {
    if (!v.lastCronStart || v.lateness.intervalMs < 3_600_000) continue
    const next = nextRun(v.schedule, v.lastCronStart)
    if (!next || next > now) continue
    const behindMs = now.getTime() - next.getTime()
    // Half a day behind is no longer lateness but a job that stopped (or a workflow disabled): its own verdict says so.
    if (behindMs > defaultVerdictRules.hardBoundMs) continue
    due++
    if (behindMs > lateAfterMs) late.push({ job: v.job, behindMs })
  }
  return late.length >= 2 && late.length * 2 >= due ? { late, due } : undefined
}
