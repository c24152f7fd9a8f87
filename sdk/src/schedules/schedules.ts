import fs from 'node:fs'
import path from 'node:path'
import { Cron } from 'croner'
import cronstrue from 'cronstrue'
import { parse } from 'yaml'
import { repoRoot } from '../project/root.ts'

/** One entry of a workflow's `on.schedule`: a 5-field cron read in its own `timezone` (IANA; UTC when absent). */
export interface ScheduleEntry {
  cron: string
  timezone?: string
}

/** One job's schedule, read from its workflow (the only place schedules live). */
export interface JobSchedule {
  job: string
  workflowFile: string
  workflowName: string | undefined
  /** Cron expressions of `on.schedule` (empty when the workflow only runs by hand). */
  cron: string[]
  /** The zone every entry shares (undefined: UTC, or entries in different zones; then read `entries`). */
  timezone: string | undefined
  /** Each `on.schedule` entry with its own timezone: GitHub reads every entry's `timezone` apart. */
  entries: ScheduleEntry[]
}

/**
 * What the schedule functions read: `entries` when given (each cron in its own zone), else every `cron` in
 * `timezone` (UTC when absent).
 */
export type ScheduleSpec = Pick<JobSchedule, 'cron' | 'timezone'> & { entries?: readonly ScheduleEntry[] }

/** The entries of a schedule, each with the zone its cron is read in. */
export function scheduleEntries(schedule: ScheduleSpec): ScheduleEntry[] {
  if (schedule.entries) return [...schedule.entries]
  return schedule.cron.map((cron) => (schedule.timezone ? { cron, timezone: schedule.timezone } : { cron }))
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
    const entries = readEntries(on?.schedule)
    const zones = new Set(entries.map((e) => e.timezone))
    schedules.push({
      job,
      workflowFile: path.join('.github', 'workflows', file),
      workflowName: typeof doc.name === 'string' ? doc.name : undefined,
      cron: entries.map((e) => e.cron),
      timezone: zones.size === 1 ? entries[0]!.timezone : undefined,
      entries,
    })
  }
  return schedules
}

/**
 * Jobs that more than one workflow runs, each with those workflow files (a copied workflow still running its
 * original's script): every job has exactly one workflow, so each of these is an error.
 */
export function duplicateWorkflows(schedules: readonly JobSchedule[]): { job: string; workflowFiles: string[] }[] {
  const byJob = new Map<string, string[]>()
  for (const s of schedules) byJob.set(s.job, [...(byJob.get(s.job) ?? []), s.workflowFile])
  return [...byJob].filter(([, files]) => files.length > 1).map(([job, workflowFiles]) => ({ job, workflowFiles }))
}

/** The line `jobs list` and the tests print for a job that several workflows run. */
export function describeDuplicate(d: { job: string; workflowFiles: readonly string[] }): string {
  const files = d.workflowFiles.map((f) => f.replace(/\\/g, '/'))
  return `error: ${files.slice(0, -1).join(', ')} and ${files.at(-1)} ${files.length === 2 ? 'both' : 'all'} run scripts/${d.job}.ts; a job has exactly one workflow (a copied workflow must run its own script)`
}

/** The `on.schedule` entries of a workflow document with a cron, each keeping its own `timezone`. */
export function readEntries(schedule: unknown): ScheduleEntry[] {
  if (!Array.isArray(schedule)) return []
  return schedule
    .filter((e): e is { cron: string; timezone?: unknown } => typeof e?.cron === 'string')
    .map((e) => (typeof e.timezone === 'string' ? { cron: e.cron, timezone: e.timezone } : { cron: e.cron }))
}

/** Every job a workflow's `run:` steps run (`scripts/<area>/<job>.ts` or `pnpm jobs run <id>`), in step order. */
export function workflowJobs(doc: Record<string, any>): string[] {
  const jobs: string[] = []
  for (const job of Object.values(doc.jobs ?? {}) as { steps?: { run?: unknown }[] }[]) {
    for (const step of job?.steps ?? []) {
      if (typeof step.run !== 'string') continue
      const match = scriptPattern.exec(step.run) ?? cliPattern.exec(step.run)
      if (match && !jobs.includes(match[1]!)) jobs.push(match[1]!)
    }
  }
  return jobs
}

// A workflow that runs several jobs is the shared runner (schedules/shared.ts), not any one job's workflow.
function findJob(doc: Record<string, any>): string | undefined {
  const jobs = workflowJobs(doc)
  return jobs.length === 1 ? jobs[0] : undefined
}

// Parsed crons by expression and zone: parsing costs far more than finding a fire time, and the watchdog and the
// dispatcher ask the same few schedules again and again. A paused Cron asked with an explicit time keeps no state.
const parsed = new Map<string, Cron>()

function crons(schedule: ScheduleSpec): Cron[] {
  return scheduleEntries(schedule).map((e) => {
    const key = `${e.timezone ?? ''} ${e.cron}`
    let cron = parsed.get(key)
    if (!cron) {
      cron = new Cron(e.cron, { timezone: e.timezone, paused: true, mode: '5-part' })
      if (parsed.size >= 1_000) parsed.clear()
      parsed.set(key, cron)
    }
    return cron
  })
}

/** The next time any of the schedule's crons fires after `from` (undefined without a schedule). */
export function nextRun(schedule: ScheduleSpec, from = new Date()): Date | undefined {
  const times = crons(schedule)
    .map((c) => c.nextRun(from))
    .filter((d): d is Date => d !== null)
  return times.length ? new Date(Math.min(...times.map((d) => d.getTime()))) : undefined
}

/** The latest time any of the schedule's crons fired at or before `before`. */
export function previousRun(schedule: ScheduleSpec, before = new Date()): Date | undefined {
  const times = crons(schedule)
    .map((c) => c.previousRuns(1, before)[0])
    .filter((d): d is Date => d !== undefined)
  return times.length ? new Date(Math.max(...times.map((d) => d.getTime()))) : undefined
}

/** The typical gap between runs, measured over the next 50 fire times (ms). */
export function typicalInterval(schedule: ScheduleSpec, from = new Date()): number | undefined {
  const times = crons(schedule)
    .flatMap((c) => c.nextRuns(50, from))
    .map((d) => d.getTime())
    .sort((a, b) => a - b)
  if (times.length < 2) return undefined
  const gaps = times.slice(1).map((t, i) => t - times[i]!)
  return Math.max(...gaps)
}

/** Fire times within [from, to). */
export function runsBetween(schedule: ScheduleSpec, from: Date, to: Date): Date[] {
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
export function describeSchedule(schedule: ScheduleSpec): string {
  const entries = scheduleEntries(schedule)
  if (entries.length === 0) return 'manual only'
  const words = (e: ScheduleEntry) => cronstrue.toString(e.cron, { use24HourTimeFormat: true, verbose: false })
  const zones = new Set(entries.map((e) => e.timezone ?? 'UTC'))
  if (zones.size === 1) return `${entries.map(words).join('; ')} (${[...zones][0]})`
  return entries.map((e) => `${words(e)} (${e.timezone ?? 'UTC'})`).join('; ')
}

/**
 * The slot a run starting at `at` serves: the latest fire time of the schedule at or before `at` (undefined for a
 * workflow without a schedule).
 */
export function slotAt(schedule: Pick<JobSchedule, 'cron' | 'timezone'>, at: Date): Date | undefined {
  return previousRun(schedule, new Date(at.getTime() + 1))
}
