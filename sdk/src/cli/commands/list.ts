import { listJobIds, loadJob } from '../../project/registry.ts'
import { estimateMonthlyMinutes, perRunMinutes } from '../../schedules/cost.ts'
import { describeLateness, loadLateness, type ScheduleLateness } from '../../schedules/lateness.ts'
import { describeSchedule, type JobSchedule, loadSchedules, nextRun } from '../../schedules/schedules.ts'
import { formatMs } from '../../text/duration.ts'
import { type Command, databaseSettings, withDatabase } from './command.ts'
import { table } from './history.ts'

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
 * successful runs, or 15 s for a job that has none).
 */
const list: Command = {
  name: 'list',
  usage: 'list [--json]',
  description: 'jobs, schedule (cron + words), next run, last result',
  flags: { json: { type: 'boolean', description: 'print JSON instead of a table' } },
  settings: databaseSettings,
  async run({ flags }, io) {
    const schedules = new Map(loadSchedules().map((s) => [s.job, s]))
    const ids = listJobIds()
    const jobs = await Promise.all(ids.map(async (id) => ({ id, job: await loadJob(id) })))
    const now = new Date()
    const [last, medians, lateness] = await withDatabase(
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
        ]),
      {
        readOnly: {
          empty: () => [[], [], new Map()] as [LastRun[], MedianRun[], Map<string, ScheduleLateness>],
        },
      },
    )
    const lastByJob = new Map(last.map((r) => [r.job, r]))
    const medianByJob = new Map(medians.map((r) => [r.job, r.median_ms]))
    const rows = jobs.map(({ id, job }) => {
      const schedule: JobSchedule | undefined = schedules.get(id)
      const lastRun = lastByJob.get(id)
      return {
        job: id,
        description: job.description,
        critical: job.critical === true,
        workflow: schedule?.workflowFile ?? null,
        schedule: schedule
          ? { cron: schedule.cron, timezone: schedule.timezone ?? 'UTC', words: describeSchedule(schedule) }
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
        ...monthlyCost(schedule, medianByJob.get(id)),
      }
    })
    if (flags.json) {
      io.stdout(JSON.stringify(rows, null, 2))
      return 0
    }
    io.stdout(
      table(
        ['job', 'schedule', 'next run (UTC)', 'last result', 'lateness', 'runs/month', 'Actions min/month'],
        rows.map((r) => [
          r.job + (r.critical ? ' *' : ''),
          r.schedule ? `${r.schedule.cron.join(', ')}  ${r.schedule.words}` : 'no workflow',
          r.nextRun ? r.nextRun.replace('T', ' ').slice(0, 16) : '-',
          r.lastRun
            ? `${r.lastRun.status} ${r.lastRun.startedAt.replace('T', ' ').slice(0, 16)}${
                r.lastRun.durationMs === null ? '' : ` (${formatMs(r.lastRun.durationMs)})`
              }`
            : 'never run',
          describeLateness(lateness.get(r.job), formatMs),
          r.runsPerMonth === null ? '-' : r.runsPerMonth.toLocaleString('en-US', { maximumFractionDigits: 1 }),
          r.actionsMinutesPerMonth === null ? '-' : r.actionsMinutesPerMonth.toLocaleString('en-US'),
        ]),
      ),
    )
    const total = rows.reduce((sum, r) => sum + (r.actionsMinutesPerMonth ?? 0), 0)
    io.stdout(`\n* critical: a failure alerts. Estimated Actions usage: ${total.toLocaleString('en-US')} min/month.`)
    return 0
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

/** Scheduled runs and estimated Actions minutes per month; a job's median run, else 15 s, sets the minutes per run. */
function monthlyCost(schedule: JobSchedule | undefined, medianMs: number | undefined) {
  if (!schedule) return { runsPerMonth: null, actionsMinutesPerMonth: null }
  const cost = estimateMonthlyMinutes(schedule.cron, perRunMinutes(medianMs))
  return { runsPerMonth: Math.round(cost.runsPerMonth * 10) / 10, actionsMinutesPerMonth: cost.minutesPerMonth }
}

export default list
