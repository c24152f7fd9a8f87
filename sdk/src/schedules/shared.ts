import fs from 'node:fs'
import path from 'node:path'
import { parse } from 'yaml'
import { ConfigError } from '../runtime/errors.ts'
import { type JobSchedule, previousRun, readEntries, repoRoot, type ScheduleEntry, workflowJobs } from './schedules.ts'

// The shared runner: one scheduled workflow whose single job runs several frequent jobs as steps, so a tick pays for
// one runner and one setup instead of one per job. Its cron is only the tick; which jobs a tick runs still comes from
// each job's own workflow `on.schedule` (the one place a schedule lives).

/** A workflow that runs several jobs on one runner, each as its own step. */
export interface SharedRunner {
  workflowFile: string
  workflowName: string | undefined
  /** Its `on.schedule`: when it ticks. */
  tick: ScheduleEntry[]
  /** The jobs its steps run, in step order. */
  jobs: string[]
}

/** Every workflow in `<root>/.github/workflows` whose `run:` steps run more than one job. */
export function loadSharedRunners(root = repoRoot()): SharedRunner[] {
  const dir = path.join(root, '.github', 'workflows')
  if (!fs.existsSync(dir)) return []
  const out: SharedRunner[] = []
  for (const file of fs.readdirSync(dir).sort()) {
    if (!/\.ya?ml$/.test(file)) continue
    const doc = parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Record<string, any> | null
    if (!doc || typeof doc !== 'object') continue
    const jobs = workflowJobs(doc)
    if (jobs.length < 2) continue
    out.push({
      workflowFile: path.join('.github', 'workflows', file),
      workflowName: typeof doc.name === 'string' ? doc.name : undefined,
      tick: readEntries((doc.on ?? doc.true)?.schedule),
      jobs,
    })
  }
  return out
}

/** Whether the shared runner serves its jobs' schedules: ADMIN_JOBS_SHARED_RUNNER, `true` (the default) or `false`. */
export function sharedRunnerOn(env: Readonly<Record<string, string | undefined>>): boolean {
  const value = env.ADMIN_JOBS_SHARED_RUNNER?.trim().toLowerCase()
  if (value === undefined || value === '' || value === 'true') return true
  if (value === 'false') return false
  throw new ConfigError(`ADMIN_JOBS_SHARED_RUNNER must be true or false (got "${env.ADMIN_JOBS_SHARED_RUNNER}")`, {
    variable: 'ADMIN_JOBS_SHARED_RUNNER',
  })
}

/** One job of a tick: due or not, and the fire time of its own schedule that makes it due. */
export interface DueJob {
  job: string
  due: boolean
  /** The latest fire time of the job's schedule in the tick's window (undefined when not due). */
  slot: Date | undefined
}

/** The jobs a tick runs. */
export interface Tick {
  /** The tick served: the latest fire time of the shared runner's cron at or before `at`. */
  tick: Date
  /** The tick before it: a job is due when its own schedule fired in (previous, tick]. */
  previous: Date
  jobs: DueJob[]
}

/**
 * Which of the shared runner's jobs are due at `at`: those whose own schedule fired after the previous tick and at
 * or before this one. A run GitHub starts late serves the tick it starts in, so every window is served by the run
 * that starts in it; a tick GitHub drops leaves its window's jobs to their next fire time, as a dropped run of
 * their own workflow would. A job without a schedule is never due. Throws when the shared runner has no schedule.
 */
export function dueAt(shared: SharedRunner, schedules: readonly JobSchedule[], at: Date): Tick {
  // previousRun looks strictly before its instant: 1 ms later makes "at or before" of it.
  const atOrBefore = (schedule: Parameters<typeof previousRun>[0], t: Date) =>
    previousRun(schedule, new Date(t.getTime() + 1))
  const ticks = { cron: [], timezone: undefined, entries: shared.tick }
  const tick = atOrBefore(ticks, at)
  if (!tick) throw new ConfigError(`${shared.workflowFile} has no schedule: it has no ticks to run jobs in`)
  const previous = previousRun(ticks, tick)!
  const byJob = new Map(schedules.map((s) => [s.job, s]))
  const jobs = shared.jobs.map((job) => {
    const schedule = byJob.get(job)
    const fired = schedule && schedule.cron.length > 0 ? atOrBefore(schedule, tick) : undefined
    const due = fired !== undefined && fired.getTime() > previous.getTime()
    return { job, due, slot: due ? fired : undefined }
  })
  return { tick, previous, jobs }
}

/** The step output name of a job: `monitoring/health-check` → `monitoring-health-check`. */
export function outputName(job: string): string {
  return job.replace(/\//g, '-')
}
