import { loadSchedules, previousRun, runsBetween } from '@admin-jobs/sdk/platform'
import type { Sql } from 'postgres'

/** One job's reliability over a period, with what its figures were counted from. */
export interface JobReliability {
  job: string
  /** Runs started in the period (dry runs left out). */
  runs: number
  /** Of them, failed or timed out. */
  failed: number
  /** failed ÷ (runs − skipped), in percent, one decimal. */
  failureRate: number
  /** Fire times in the period the job was expected to serve: after it existed, outside its pauses, before now. */
  expected: number
  /** Expected fire times with no run started between them and the next fire time. */
  missed: number
  /** Since when runs were expected (ISO), or null when the job never ran and the watchdog never saw it. */
  expectedFrom: string | null
  /** Fire times in the period left out because a pause held the job. */
  paused: number
}

/** A span of [start, end) during which a pause held its target. */
interface PauseSpan {
  target: string
  start: number
  end: number
}

const finite = (d: Date | null | undefined): number | undefined =>
  d && Number.isFinite(d.getTime()) ? d.getTime() : undefined

/** Per job, its first recorded run (any run, any time) and when the watchdog first saw its workflow (`firstSeen`). */
async function firstExisted(sql: Sql): Promise<Map<string, { run?: number; seen?: number }>> {
  const [firstRuns, seen] = await Promise.all([
    sql<{ job: string; first: Date }[]>`select job, min(started_at) as first from jobs.runs group by job`,
    sql<{ value: Record<string, string> | null }[]>`
      select value from jobs.job_state where key = 'firstSeen' and jsonb_typeof(value) = 'object'`,
  ])
  const out = new Map<string, { run?: number; seen?: number }>()
  for (const r of firstRuns) out.set(r.job, { run: finite(r.first) })
  for (const { value } of seen) {
    for (const [job, text] of Object.entries(value ?? {})) {
      const at = typeof text === 'string' ? Date.parse(text) : Number.NaN
      const known = out.get(job) ?? {}
      if (Number.isFinite(at) && at < (known.seen ?? Number.POSITIVE_INFINITY)) out.set(job, { ...known, seen: at })
    }
  }
  return out
}

/** Every pause that overlapped [from, to): from its creation to its resume or expiry, whichever came first. */
async function pauseSpans(sql: Sql, from: Date, to: Date): Promise<PauseSpan[]> {
  const rows = await sql<{ target: string; start: Date; end: Date }[]>`
    select target, created_at as start, least(coalesce(resumed_at, paused_until), paused_until) as end
    from jobs.pauses
    where created_at < ${to} and least(coalesce(resumed_at, paused_until), paused_until) > ${from}`
  // An open-ended pause (`infinity`) reads as an invalid date: it holds to the end of the period.
  return rows.map((r) => ({
    target: r.target,
    start: finite(r.start) ?? from.getTime(),
    end: finite(r.end) ?? to.getTime(),
  }))
}

/**
 * Per job: runs, failures, failure rate, and the fire times of its schedule in [from, min(to, now)) it was expected
 * to serve, and how many of those had no run. A fire time is expected from the one the job's first run served (or
 * from when the watchdog first saw the job, if earlier) and not while a pause of the job (or of `all`, unless the
 * job is in `exempt`) held it. A job that never ran and was never seen expects nothing.
 */
export async function jobReliability(
  sql: Sql,
  from: Date,
  to: Date,
  now: Date,
  exempt: ReadonlySet<string> = new Set(),
): Promise<JobReliability[]> {
  const until = new Date(Math.min(to.getTime(), now.getTime()))
  const [rows, existed, pauses] = await Promise.all([
    sql<{ job: string; runs: number; failed: number; skipped: number; starts: Date[] }[]>`
      select job, count(*)::int as runs,
        count(*) filter (where status in ('failed', 'timed_out'))::int as failed,
        count(*) filter (where status = 'skipped')::int as skipped,
        array_agg(started_at order by started_at) as starts
      from jobs.runs where started_at >= ${from} and started_at < ${to} and not dry_run
      group by job`,
    firstExisted(sql),
    pauseSpans(sql, from, until),
  ])
  const byJob = new Map(rows.map((r) => [r.job, r]))
  const schedules = new Map(loadSchedules().map((s) => [s.job, s]))
  const jobs = [...new Set([...byJob.keys(), ...schedules.keys()])].sort()
  return jobs.map((job) => {
    const r = byJob.get(job)
    const schedule = schedules.get(job)
    const slots = schedule?.cron.length ? runsBetween(schedule, from, until) : []
    // Expected from the earlier of: the fire time the first run served (the latest at or before its start), and
    // when the watchdog first saw the job.
    const first = existed.get(job)
    const servedByFirst =
      first?.run === undefined || !schedule?.cron.length
        ? first?.run
        : Math.min(first.run, previousRun(schedule, new Date(first.run))?.getTime() ?? first.run)
    const known = [servedByFirst, first?.seen].filter((t): t is number => t !== undefined)
    const expectedFrom = known.length ? Math.min(...known) : undefined
    const holds = pauses.filter((p) => p.target === job || (p.target === 'all' && !exempt.has(job)))
    const paused = (t: number) => holds.some((p) => p.start <= t && t < p.end)
    const starts = (r?.starts ?? []).map((d) => new Date(d).getTime())
    let expected = 0
    let missed = 0
    let pausedSlots = 0
    let i = 0
    slots.forEach((slot, n) => {
      const t = slot.getTime()
      if (expectedFrom === undefined || t < expectedFrom) return
      if (paused(t)) {
        pausedSlots++
        return
      }
      expected++
      // Missed: no run started between this fire time and the next (the last one: up to the period's end or now).
      const next = slots[n + 1]?.getTime() ?? until.getTime()
      while (i < starts.length && starts[i]! < t) i++
      if (!(i < starts.length && starts[i]! < Math.max(next, t + 1))) missed++
    })
    const counted = (r?.runs ?? 0) - (r?.skipped ?? 0)
    return {
      job,
      runs: r?.runs ?? 0,
      failed: r?.failed ?? 0,
      failureRate: counted > 0 ? Math.round(((r?.failed ?? 0) / counted) * 1000) / 10 : 0,
      expected,
      missed,
      expectedFrom: expectedFrom === undefined ? null : new Date(expectedFrom).toISOString(),
      paused: pausedSlots,
    }
  })
}
