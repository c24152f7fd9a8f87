import fs from 'node:fs'
import path from 'node:path'
import { Cron } from 'croner'
import cronstrue from 'cronstrue'
import { parse } from 'yaml'
import { repoRoot } from '../project/root.ts'

/** One job's schedule, read from its workflow (the only place schedules live). */
export interface JobSchedule {
  job: string
  workflowFile: string
  workflowName: string | undefined
  /** Cron expressions of `on.schedule` (empty when the workflow only runs by hand). */
  cron: string[]
  /** The schedule's `timezone` (IANA), UTC when absent. */
  timezone: string | undefined
}

export { repoRoot } from '../project/root.ts'

const scriptPattern = /\bscripts\/([\w-]+\/[\w-]+)\.ts\b/
const cliPattern = /\bpnpm jobs run ([\w-]+\/[\w-]+)\b/

/** Reads every workflow in `<root>/.github/workflows` that runs a job script; ci/retry workflows are skipped. */
export function loadSchedules(root = repoRoot(), only?: string): JobSchedule[] {
  const dir = path.join(root, '.github', 'workflows')
  if (!fs.existsSync(dir)) return []
  const schedules: JobSchedule[] = []
  for (const file of fs.readdirSync(dir).sort()) {
    if (!/\.ya?ml$/.test(file)) continue
    const text = fs.readFileSync(path.join(dir, file), 'utf8')
    // One job's schedule is wanted at every run's start: parse only the workflows that can name it.
    if (only && !text.includes(`scripts/${only}.ts`) && !text.includes(`jobs run ${only}`)) continue
    const doc = parse(text) as Record<string, any> | null
    if (!doc || typeof doc !== 'object') continue
    const job = findJob(doc)
    if (!job || (only && job !== only)) continue
    const on = doc.on ?? doc.true // YAML 1.1 readers may turn `on` into true
    const entries: { cron?: string; timezone?: string }[] = Array.isArray(on?.schedule) ? on.schedule : []
    schedules.push({
      job,
      workflowFile: path.join('.github', 'workflows', file),
      workflowName: typeof doc.name === 'string' ? doc.name : undefined,
      cron: entries.map((e) => e.cron).filter((c): c is string => typeof c === 'string'),
      timezone: entries.find((e) => typeof e.timezone === 'string')?.timezone,
    })
  }
  return schedules
}

function findJob(doc: Record<string, any>): string | undefined {
  for (const job of Object.values(doc.jobs ?? {}) as { steps?: { run?: unknown }[] }[]) {
    for (const step of job?.steps ?? []) {
      if (typeof step.run !== 'string') continue
      const match = scriptPattern.exec(step.run) ?? cliPattern.exec(step.run)
      if (match) return match[1]
    }
  }
  return undefined
}

function crons(schedule: Pick<JobSchedule, 'cron' | 'timezone'>): Cron[] {
  return schedule.cron.map((c) => new Cron(c, { timezone: schedule.timezone, paused: true, mode: '5-part' }))
}

/** The next time any of the schedule's crons fires after `from` (undefined without a schedule). */
export function nextRun(schedule: Pick<JobSchedule, 'cron' | 'timezone'>, from = new Date()): Date | undefined {
  const times = crons(schedule)
    .map((c) => c.nextRun(from))
    .filter((d): d is Date => d !== null)
  return times.length ? new Date(Math.min(...times.map((d) => d.getTime()))) : undefined
}

/** The latest time any of the schedule's crons fired at or before `before`. */
export function previousRun(schedule: Pick<JobSchedule, 'cron' | 'timezone'>, before = new Date()): Date | undefined {
  const times = crons(schedule)
    .map((c) => c.previousRuns(1, before)[0])
    .filter((d): d is Date => d !== undefined)
  return times.length ? new Date(Math.max(...times.map((d) => d.getTime()))) : undefined
}

/** The typical gap between runs, measured over the next 50 fire times (ms). */
export function typicalInterval(
  schedule: Pick<JobSchedule, 'cron' | 'timezone'>,
  from = new Date(),
): number | undefined {
  const times = crons(schedule)
    .flatMap((c) => c.nextRuns(50, from))
    .map((d) => d.getTime())
    .sort((a, b) => a - b)
  if (times.length < 2) return undefined
  const gaps = times.slice(1).map((t, i) => t - times[i]!)
  return Math.max(...gaps)
}

/** Fire times within [from, to). */
export function runsBetween(schedule: Pick<JobSchedule, 'cron' | 'timezone'>, from: Date, to: Date): Date[] {
  const out: Date[] = []
  for (const cron of crons(schedule)) {
    let at = cron.nextRun(new Date(from.getTime() - 1))
    while (at && at < to) {
      out.push(at)
      at = cron.nextRun(at)
    }
  }
  return out.sort((a, b) => a.getTime() - b.getTime())
}

/** The schedule in words: "At 03:00 (UTC)". */
export function describeSchedule(schedule: Pick<JobSchedule, 'cron' | 'timezone'>): string {
  if (schedule.cron.length === 0) return 'manual only'
  const words = schedule.cron.map((c) => cronstrue.toString(c, { use24HourTimeFormat: true, verbose: false }))
  return `${words.join('; ')} (${schedule.timezone ?? 'UTC'})`
}

/**
 * The slot a run starting at `at` serves: the latest fire time of the schedule at or before `at` (undefined for a
 * workflow without a schedule).
 */
export function slotAt(schedule: Pick<JobSchedule, 'cron' | 'timezone'>, at: Date): Date | undefined {
  return previousRun(schedule, new Date(at.getTime() + 1))
}
