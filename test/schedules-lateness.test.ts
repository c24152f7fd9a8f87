import {
  allowanceFloor,
  allowanceFor,
  type DispatchClaim,
  type JobSchedule,
  measureLateness,
  waitsOf,
} from '@admin-jobs/sdk/platform'
import { describe, expect, it } from 'vitest'
import { expectedAt, githubLateness, type JobView, judge } from '#monitoring'

const at = (iso: string) => new Date(iso)
const minute = 60_000
const hour = 60 * minute
const schedule = (job: string, cron: string, timezone?: string): JobSchedule => ({
  job,
  workflowFile: `.github/workflows/${job.replace('/', '-')}.yml`,
  workflowName: job,
  cron: [cron],
  entries: [{ cron, timezone }],
  timezone,
})
const daily = schedule('backups/database', '41 2 * * *')
const fiveMinutes = schedule('monitoring/health-check', '2-57/5 * * * *')

/** Daily runs `lateMinutes[i]` minutes after 02:41 on consecutive days from 2026-11-01, as the runner records them. */
const dailyRuns = (lateMinutes: number[]) =>
  lateMinutes.map((m, i) => {
    const slot = new Date(Date.UTC(2026, 10, 1 + i, 2, 41))
    return { startedAt: new Date(slot.getTime() + m * minute), slot, trigger: 'schedule' }
  })

describe('lateness learned from slots', () => {
  it('measures start minus slot of recent runs: median, 90th percentile and worst', () => {
    const l = measureLateness(daily, dailyRuns([5, 40, 12, 30, 8, 22, 35, 17, 3, 27]), at('2026-11-11T00:00:00Z'))
    expect(l.samples).toBe(10)
    expect(l.medianMs).toBe(17 * minute)
    expect(l.p90Ms).toBe(35 * minute)
    expect(l.maxMs).toBe(40 * minute)
    expect(l.last).toMatchObject({ latenessMs: 27 * minute, trigger: 'schedule' })
  })

  it('counts a dropped tick as one long wait and an on-time run as none', () => {
    const starts = [at('2026-11-01T02:50:00Z'), at('2026-11-03T02:45:00Z'), at('2026-11-03T23:00:00Z')]
    expect(waitsOf(daily, starts)).toEqual([24 * hour + 4 * minute, 0])
  })

  it('allows twice the 75th percentile of the waits, between the floor and 3 hours, an hour before it has learned', () => {
    expect(allowanceFloor(5 * minute)).toBe(10 * minute)
    expect(allowanceFloor(15 * minute)).toBe(30 * minute)
    expect(allowanceFloor(24 * hour)).toBe(hour)
    expect(
      allowanceFor(
        24 * hour,
        [1, 2, 3].map((m) => m * minute),
      ),
    ).toEqual({ allowanceMs: hour, basis: 'default' })
    expect(
      allowanceFor(
        24 * hour,
        [10, 20, 30, 35, 40, 5].map((m) => m * minute),
      ),
    ).toEqual({
      allowanceMs: 70 * minute,
      basis: 'learned',
    })
    expect(
      allowanceFor(
        5 * minute,
        [0, 0, 1, 2, 1].map((m) => m * minute),
      ).allowanceMs,
    ).toBe(10 * minute)
    expect(
      allowanceFor(
        24 * hour,
        [5, 6, 6, 7, 8].map((h) => h * hour),
      ).allowanceMs,
    ).toBe(3 * hour)
    expect(allowanceFor(24 * hour, [], 45 * minute)).toEqual({ allowanceMs: 45 * minute, basis: 'override' })
  })

  it('does not let a few bad days in two weeks raise the allowance', () => {
    const late = dailyRuns([10, 25, 40, 15, 300, 360, 20, 30, 35, 12, 18, 240, 22, 28])
    const l = measureLateness(daily, late, at('2026-11-15T00:00:00Z'))
    expect(l.basis).toBe('learned')
    expect(l.allowanceMs).toBeLessThanOrEqual(80 * minute)
  })
})

function view(partial: Partial<JobView> & Pick<JobView, 'schedule' | 'lastStart'>, now: Date): JobView {
  return {
    job: partial.schedule.job,
    critical: true,
    lastCronStart: partial.lastStart,
    watchFrom: undefined,
    claim: undefined,
    ...partial,
    lateness: partial.lateness ?? measureLateness(partial.schedule, [], now),
  }
}
const withToken = { dispatchStartMs: 15 * minute, hardBoundMs: 12 * hour, canDispatch: true }
const noToken = { ...withToken, canDispatch: false }
const claim = (slot: string, claimedAt: string, status: DispatchClaim['status'] = 'sent'): DispatchClaim => ({
  job: 'backups/database',
  slot: at(slot),
  claimedAt: at(claimedAt),
  claimedBy: 'dispatcher@admin',
  status,
  workflow: null,
  error: null,
})

describe('the watchdog’s verdicts', () => {
  const lastStart = at('2026-11-27T03:10:00Z')

  it('expects a daily job at the first fire time after its last run, in the schedule’s own timezone', () => {
    expect(expectedAt({ schedule: daily, lastStart, watchFrom: undefined })).toEqual(at('2026-11-28T02:41:00Z'))
    const nine = schedule('notifications/expiry', '0 9 * * *', 'America/New_York')
    expect(expectedAt({ schedule: nine, lastStart: at('2026-03-07T14:00:00Z'), watchFrom: undefined })).toEqual(
      at('2026-03-08T13:00:00Z'),
    )
  })

  it('leaves a job alone within its allowance, however late GitHub is', () => {
    const now = at('2026-11-28T03:35:00Z')
    expect(judge(view({ schedule: daily, lastStart }, now), now, withToken, { githubLate: true })).toEqual({
      kind: 'on-time',
    })
  })

  it('asks for a catch-up dispatch past the allowance, then waits for the dispatched run', () => {
    const now = at('2026-11-28T03:45:00Z')
    const late = judge(view({ schedule: daily, lastStart }, now), now, withToken, { githubLate: false })
    expect(late).toMatchObject({ kind: 'late', action: 'catch-up', overdueMs: 64 * minute })
    const dispatched = view({ schedule: daily, lastStart, claim: claim('2026-11-28T02:41Z', '2026-11-28T03:40Z') }, now)
    expect(judge(dispatched, now, withToken, { githubLate: false })).toMatchObject({ action: 'dispatched' })
  })

  it('calls a job stopped when a dispatched run has not started 15 minutes later, before any allowance', () => {
    const now = at('2026-11-28T02:58:00Z')
    const v = view({ schedule: daily, lastStart, claim: claim('2026-11-28T02:41Z', '2026-11-28T02:41:05Z') }, now)
    const verdict = judge(v, now, withToken, { githubLate: true })
    expect(verdict.kind).toBe('stopped')
    expect(verdict.kind === 'stopped' && verdict.reason).toContain('no run has started since')
    // A run after the dispatch (even a skipped one) means the workflow runs.
    const ran = { ...v, lastStart: at('2026-11-28T02:42:30Z') }
    expect(judge(ran, now, withToken, { githubLate: true }).kind).toBe('on-time')
    // A refused dispatch was never taken by GitHub: it proves nothing.
    const refused = { ...v, claim: claim('2026-11-28T02:41Z', '2026-11-28T02:41:05Z', 'refused') }
    expect(judge(refused, now, withToken, { githubLate: false }).kind).toBe('on-time')
  })

  it('calls a job stopped whose workflow runs on GitHub but fails before recording a run', () => {
    const now = at('2026-11-28T04:00:00Z')
    const runs = [
      {
        id: 9,
        event: 'schedule',
        status: 'completed',
        conclusion: 'failure',
        created_at: '2026-11-28T03:20:00Z',
        html_url: 'https://github.com/acme/admin/actions/runs/9',
      },
    ]
    const verdict = judge(view({ schedule: daily, lastStart }, now), now, withToken, {
      githubLate: false,
      githubRuns: runs,
    })
    expect(verdict.kind === 'stopped' && verdict.reason).toContain('fails before the job starts')
  })

  it('without a token, warns past the allowance and pages once the next fire time is missed too', () => {
    const v = (now: Date) => view({ schedule: fiveMinutes, lastStart: at('2026-11-28T12:02:30Z') }, now)
    const warn = judge(v(at('2026-11-28T13:10:00Z')), at('2026-11-28T13:10:00Z'), noToken, { githubLate: false })
    expect(warn).toMatchObject({ kind: 'late', action: 'warn' })
    const stop = judge(v(at('2026-11-28T13:20:00Z')), at('2026-11-28T13:20:00Z'), noToken, { githubLate: false })
    expect(stop.kind).toBe('stopped')
    // While GitHub is late for most jobs, the same job is held as late until the 12-hour bound.
    const held = judge(v(at('2026-11-28T13:20:00Z')), at('2026-11-28T13:20:00Z'), noToken, { githubLate: true })
    expect(held).toMatchObject({ kind: 'late', action: 'github-late' })
    const bound = at('2026-11-29T02:10:00Z')
    expect(judge(v(bound), bound, noToken, { githubLate: true }).kind).toBe('stopped')
  })
})

describe('GitHub running late', () => {
  const now = at('2026-11-28T12:00:00Z')
  const jobs = [
    schedule('monitoring/health-check', '2-57/5 * * * *'),
    schedule('cleanup/sessions', '7 */6 * * *'),
    schedule('cleanup/tokens', '0 9 * * *'),
    schedule('reports/daily', '0 1 * * *'),
    schedule('notifications/expiry', '30 10 * * *'),
  ]
  const cronAt = (times: Record<string, string>) =>
    jobs.map((s) => view({ schedule: s, lastStart: at(times[s.job] ?? '2026-11-28T11:58:00Z') }, now))

  it('is most due hourly-or-slower jobs more than an hour behind on GitHub’s cron', () => {
    const late = githubLateness(
      cronAt({ 'cleanup/sessions': '2026-11-28T00:20:00Z', 'cleanup/tokens': '2026-11-27T09:10:00Z' }),
      now,
    )
    expect(late?.late.map((l) => l.job)).toEqual(['cleanup/sessions', 'cleanup/tokens'])
    expect(late?.due).toBe(2)
  })

  it('is not one job behind (a dropped tick), a five-minute job running late, nor a job stopped for days', () => {
    const views = cronAt({
      'monitoring/health-check': '2026-11-28T09:00:00Z',
      'cleanup/tokens': '2026-11-27T09:10:00Z',
      'reports/daily': '2026-11-20T01:10:00Z',
    })
    expect(githubLateness(views, now)).toBeUndefined()
  })
})
