import { listJobIds, loadJob } from '../../project/registry.ts'
import { activePauses, type Pause, pauseFor } from '../../records/pauses.ts'
import { estimateUsage, isHostedRunner, type UsageLine } from '../../schedules/cost.ts'
import { describeLateness, loadLateness, type ScheduleLateness } from '../../schedules/lateness.ts'
import {
  describeDuplicate,
  describeSchedule,
  duplicateWorkflows,
  type JobSchedule,
  loadSchedules,
  nextRun,
} from '../../schedules/schedules.ts'
import { loadSharedRunners, sharedRunnerOn } from '../../schedules/shared.ts'
import { formatMs } from '../../text/duration.ts'
import { relativeTime } from '../../text/relative.ts'
import { textTable, wrap } from '../../text/table.ts'
import { type Command, databaseSettings, outputWidth, withDatabase } from './command.ts'

interface LastRun {
  job: string
  status: string
  started_at: Date
  finished_at: Date | null
}

interface MedianRun {
  job: string
  median_ms: number
}

/**
 * `pnpm jobs list [--json]`: every job with its schedule (cron and words), next run, last result and the estimated
 * GitHub Actions minutes per month (scheduled runs × billed minutes per run, from the median of the last 30 days'
 * successful runs, or defaultJobMs (10 s) for a job that has none). Jobs the shared runner runs bill to it while
 * ADMIN_JOBS_SHARED_RUNNER is not `false`; with ADMIN_JOBS_RUNNER naming a self-hosted runner nothing is billed.
 */
const list: Command = {
  name: 'list',
  usage: 'list [--json]',
  description: 'jobs, schedule (cron + words), next run, last result',
  flags: { json: { type: 'boolean', description: 'print JSON instead of a table' } },
  notes: ['Exits 1 after the listing when two workflows run the same job script; an error line names both.'],
  settings: [
    ...databaseSettings,
    {
      name: 'ADMIN_JOBS_SHARED_RUNNER',
      kind: 'true or false',
      default: 'true',
      description: 'whether the shared runner (frequent.yml) runs its jobs, as the repository variable says',
    },
    {
      name: 'ADMIN_JOBS_RUNNER',
      kind: 'label or JSON array of labels',
      default: 'ubuntu-latest',
      description: 'the runner, as the repository variable says (self-hosted: no minutes billed)',
    },
  ],
  async run({ flags }, io) {
    const sharedOn = sharedRunnerOn(io.env)
    const loaded = loadSchedules()
    const schedules = new Map(loaded.map((s) => [s.job, s]))
    const ids = listJobIds()
    const jobs = await Promise.all(ids.map(async (id) => ({ id, job: await loadJob(id) })))
    const now = new Date()
    const [last, medians, lateness, pauses] = await withDatabase(
      io,
      (sql) =>
        Promise.all([
          sql<LastRun[]>`
        select distinct on (job) job, status, started_at, finished_at
        from jobs.runs where status <> 'skipped'
        order by job, started_at desc`,
          sql<MedianRun[]>`
        select job,
          percentile_cont(0.5) within group (order by extract(epoch from finished_at - started_at) * 1000)::float8
            as median_ms
        from jobs.runs
        where status = 'succeeded' and finished_at is not null and started_at > now() - interval '30 days'
        group by job`,
          loadLateness(sql, [...schedules.values()], now),
          activePauses(sql),
        ]),
      {
        readOnly: {
          empty: () => [[], [], new Map(), []] as [LastRun[], MedianRun[], Map<string, ScheduleLateness>, Pause[]],
        },
      },
    )
    const lastByJob = new Map(last.map((r) => [r.job, r]))
    const medianByJob = new Map(medians.map((r) => [r.job, r.median_ms]))
    const usage = estimateUsage({
      schedules: loaded,
      sharedRunners: loadSharedRunners(),
      sharedOn,
      hosted: isHostedRunner(io.env.ADMIN_JOBS_RUNNER),
      jobMs: (job) => medianByJob.get(job),
    })
    const usageOf = new Map(usage.jobs.map((u) => [u.name, u]))
    const rows = jobs.map(({ id, job }) => {
      const schedule: JobSchedule | undefined = schedules.get(id)
      const lastRun = lastByJob.get(id)
      const paused = pauseFor(id, pauses, job.exemptFromPauseAll !== undefined)
      return {
        job: id,
        description: job.description,
        critical: job.critical === true,
        workflow: schedule?.workflowFile ?? null,
        schedule: schedule
          ? {
              cron: schedule.cron,
              timezone: schedule.timezone ?? (schedule.entries.some((e) => e.timezone) ? 'mixed' : 'UTC'),
              entries: schedule.entries.map((e) => ({ cron: e.cron, timezone: e.timezone ?? 'UTC' })),
              words: describeSchedule(schedule),
            }
          : null,
        nextRun: schedule ? (nextRun(schedule, now)?.toISOString() ?? null) : null,
        lastRun: lastRun
          ? {
              status: lastRun.status,
              startedAt: lastRun.started_at.toISOString(),
              durationMs: lastRun.finished_at ? lastRun.finished_at.getTime() - lastRun.started_at.getTime() : null,
            }
          : null,
        lateness: latenessJson(lateness.get(id)),
        paused: paused
          ? { target: paused.target, reason: paused.reason, until: paused.until.toISOString(), by: paused.createdBy }
          : null,
        exemptFromPauseAll: job.exemptFromPauseAll ?? null,
        ...monthlyCost(usageOf.get(id)),
      }
    })
    // Two workflows running one script: the schedule shown is one of them, so say so, naming both.
    const duplicates = duplicateWorkflows(loaded)
    for (const d of duplicates) io.stderr(describeDuplicate(d))
    if (flags.json) {
      io.stdout(JSON.stringify(rows, null, 2))
      return duplicates.length ? 1 : 0
    }
    const width = outputWidth(io)
    const say = (text: string) => io.stdout(wrap(text, width))
    io.stdout(
      textTable(
        [
          { head: 'job', min: Number.POSITIVE_INFINITY },
          { head: 'cron', min: Number.POSITIVE_INFINITY },
          { head: 'schedule', min: 14, drop: 0 },
          { head: 'next run (UTC)', min: 16 },
          { head: 'last result', min: 20, drop: 3 },
          { head: 'lateness', min: 10, drop: 1 },
          { head: 'runs/month', drop: 2 },
          { head: 'Actions min/month', min: 17, drop: 2 },
        ],
        rows.map((r) => [
          r.job + (r.critical ? ' *' : ''),
          r.schedule ? r.schedule.cron.join(', ') : 'no workflow',
          r.schedule?.words ?? '',
          // The pause's end and reason follow the table.
          r.paused ? 'paused' : r.nextRun ? r.nextRun.replace('T', ' ').slice(0, 16) : '-',
          r.lastRun
            ? `${r.lastRun.status} ${relativeTime(new Date(r.lastRun.startedAt), now)}${
                r.lastRun.durationMs === null ? '' : ` (${formatMs(r.lastRun.durationMs)})`
              }`
            : 'never run',
          describeLateness(lateness.get(r.job), formatMs),
          r.runsPerMonth === null ? '-' : r.runsPerMonth.toLocaleString('en-US', { maximumFractionDigits: 1 }),
          r.sharedRunner
            ? `in ${r.sharedRunner.replace('.github/workflows/', '')}`
            : r.actionsMinutesPerMonth === null
              ? '-'
              : r.actionsMinutesPerMonth.toLocaleString('en-US'),
        ]),
        width,
      ),
    )
    for (const p of pauses)
      say(
        `\npaused: ${p.target === 'all' ? 'all jobs' : p.target} until ${p.until.toISOString().slice(0, 16).replace('T', ' ')} UTC: ${p.reason}${
          p.target === 'all'
            ? ` (exempt, still running: ${rows
                .filter((r) => r.exemptFromPauseAll !== null)
                .map((r) => r.job)
                .join(', ')})`
            : ''
        }`,
      )
    const count = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 })
    for (const shared of usage.sharedRunners) {
      say(
        `\n${shared.workflowFile} (shared runner: one runner a tick for the jobs marked "in ${shared.workflowFile.replace('.github/workflows/', '')}"): ` +
          `${count(shared.runsPerMonth)} runs/month, ${count(shared.minutesPerMonth)} min/month.`,
      )
    }
    const where = usage.hosted
      ? 'on GitHub-hosted runners'
      : 'on a self-hosted runner (ADMIN_JOBS_RUNNER), which bills no minutes'
    say(
      `\n* critical: a failure alerts. Estimated Actions usage ${where}: ${count(usage.totalMinutesPerMonth)} min/month.`,
    )
    return duplicates.length ? 1 : 0
  },
}

/** A schedule's lateness as `list --json` prints it (docs/reference.md), or null without a schedule. */
export function latenessJson(l: ScheduleLateness | undefined) {
  if (!l) return null
  return {
    samples: l.samples,
    medianMs: l.medianMs ?? null,
    p90Ms: l.p90Ms ?? null,
    maxMs: l.maxMs ?? null,
    allowanceMs: l.allowanceMs,
    allowanceBasis: l.basis,
  }
}

/** Scheduled runs and estimated Actions minutes per month of one job (its minutes are the shared runner's, if any). */
function monthlyCost(usage: UsageLine | undefined) {
  if (!usage) return { runsPerMonth: null, actionsMinutesPerMonth: null, sharedRunner: null }
  return {
    runsPerMonth: Math.round(usage.runsPerMonth * 10) / 10,
    actionsMinutesPerMonth: usage.minutesPerMonth,
    sharedRunner: usage.sharedBy ?? null,
  }
}

export default list
