import type { Sql } from 'postgres'
import { percentile } from '../numbers/percentiles.ts'
import { type RunTiming, recentRunTimings } from '../records/runs.ts'
import { type JobSchedule, nextRun, typicalInterval } from './schedules.ts'

const minute = 60_000
const hour = 60 * minute

/** What a schedule's recent runs say about its lateness (docs/monitoring.md, "Lateness"). */
export interface ScheduleLateness {
  job: string
  /** Runs with a slot the figures are drawn from (the newest 100 within the window). */
  samples: number
  /** Start minus slot of those runs: median, 90th percentile and worst (ms); undefined without samples. */
  medianMs: number | undefined
  p90Ms: number | undefined
  maxMs: number | undefined
  /** The newest of them. */
  last: { slot: Date; startedAt: Date; latenessMs: number; trigger: string } | undefined
  /** The longest gap between two fire times of the schedule (ms). */
  intervalMs: number
  /**
   * How long past a fire time without a run the watchdog waits before it acts (a catch-up dispatch, or an alert):
   * twice the 75th percentile of the schedule's recent waits, kept between the floor and 3 hours.
   */
  allowanceMs: number
  /** `learned` from at least 5 waits, `default` (1 hour, GitHub's ordinary lateness) before that, or `override`. */
  basis: 'learned' | 'default' | 'override'
}

/** Bounds and defaults of the allowance (docs/monitoring.md). */
export const allowanceBounds = Object.freeze({
  /** Before 5 waits are known: GitHub's daily crons run 40 minutes late routinely. */
  defaultMs: hour,
  /** The most the allowance grows to, however late the history. */
  maxMs: 3 * hour,
  /** Waits needed before the allowance is learned. */
  minSamples: 5,
})

/** The smallest allowance of a schedule: two intervals, at least 10 minutes and at most an hour. */
export function allowanceFloor(intervalMs: number): number {
  return Math.min(Math.max(2 * intervalMs, 10 * minute), hour)
}

/**
 * The allowance of a schedule from its recent waits (each: how long past the first fire time after one run the next
 * run started, 0 when on time): twice their 75th percentile, between allowanceFloor and 3 hours; the default of an
 * hour (or the floor, if larger) before 5 waits are known; `overrideMs` replaces it.
 */
export function allowanceFor(
  intervalMs: number,
  waitsMs: readonly number[],
  overrideMs?: number,
): Pick<ScheduleLateness, 'allowanceMs' | 'basis'> {
  if (overrideMs !== undefined) return { allowanceMs: overrideMs, basis: 'override' }
  const floor = allowanceFloor(intervalMs)
  if (waitsMs.length < allowanceBounds.minSamples)
    return { allowanceMs: Math.max(floor, allowanceBounds.defaultMs), basis: 'default' }
  const learned = 2 * percentile(waitsMs, 75)!
  return { allowanceMs: Math.min(Math.max(learned, floor), allowanceBounds.maxMs), basis: 'learned' }
}

/**
 * The waits of a run history (oldest first): for each run after the first, how long after the first fire time
 * following the previous run it started (0 when it started before that fire time was due). A dropped tick shows as
 * one long wait, a late cron as a short one.
 */
export function waitsOf(schedule: Pick<JobSchedule, 'cron' | 'timezone'>, starts: readonly Date[]): number[] {
  const waits: number[] = []
  for (let i = 1; i < starts.length; i++) {
    const due = nextRun(schedule, starts[i - 1]!)
    if (due) waits.push(Math.max(0, starts[i]!.getTime() - due.getTime()))
  }
  return waits
}

/**
 * The lateness of one schedule from its run timings (oldest first). `overrideMs` replaces the learned allowance;
 * `intervalMs` saves working out the schedule's interval again (default typicalInterval, or a day).
 */
export function measureLateness(
  schedule: JobSchedule,
  timings: readonly Pick<RunTiming, 'startedAt' | 'slot' | 'trigger'>[],
  now: Date,
  options: { overrideMs?: number; intervalMs?: number } = {},
): ScheduleLateness {
  const withSlot = timings.filter((t): t is typeof t & { slot: Date } => t.slot !== null)
  const lateness = withSlot.map((t) => Math.max(0, t.startedAt.getTime() - t.slot.getTime()))
  const newest = withSlot.at(-1)
  const intervalMs = options.intervalMs ?? typicalInterval(schedule, now) ?? 24 * hour
  return {
    job: schedule.job,
    samples: lateness.length,
    medianMs: percentile(lateness, 50),
    p90Ms: percentile(lateness, 90),
    maxMs: lateness.length ? Math.max(...lateness) : undefined,
    last: newest
      ? {
          slot: newest.slot,
          startedAt: newest.startedAt,
          latenessMs: lateness.at(-1)!,
          trigger: newest.trigger,
        }
      : undefined,
    intervalMs,
    ...allowanceFor(
      intervalMs,
      waitsOf(
        schedule,
        timings.map((t) => t.startedAt),
      ),
      options.overrideMs,
    ),
  }
}

/** How far back lateness is learned: 14 days (at most the newest 100 runs of each job). */
export const latenessWindowMs = 14 * 24 * hour

/**
 * The lateness of every scheduled job from `jobs.runs` (the newest 100 real runs of the last 14 days): what
 * `pnpm jobs list`, `pnpm jobs status` and the watchdog show. Jobs without a schedule are left out.
 */
export async function loadLateness(
  sql: Sql,
  schedules: readonly JobSchedule[],
  now = new Date(),
): Promise<Map<string, ScheduleLateness>> {
  const timings = await recentRunTimings(sql, { since: new Date(now.getTime() - latenessWindowMs), until: now })
  const out = new Map<string, ScheduleLateness>()
  for (const s of schedules) {
    if (s.cron.length === 0) continue
    out.set(s.job, measureLateness(s, timings.get(s.job) ?? [], now))
  }
  return out
}

/** Lateness in a few words for tables: `median 12m, p90 38m (20 runs)`, or `-` without samples. */
export function describeLateness(l: ScheduleLateness | undefined, format: (ms: number) => string): string {
  if (!l || l.samples === 0) return '-'
  return `median ${format(l.medianMs!)}, p90 ${format(l.p90Ms!)} (${l.samples} runs)`
}
