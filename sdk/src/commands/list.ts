import { formatMs } from '../duration.ts'
import { listJobIds, loadJob } from '../jobs.ts'
import { describeSchedule, type JobSchedule, loadSchedules, nextRun } from '../schedules.ts'
import { type Command, parseArgs, withDatabase } from './command.ts'
import { table } from './history.ts'

interface LastRun {
  job: string
  status: string
  started_at: Date
  finished_at: Date | null
}

/** `pnpm jobs list [--json]`: every job with its schedule (cron and words), next run and last result. */
const list: Command = {
  name: 'list',
  usage: 'list [--json]',
  description: 'jobs, schedule (cron + words), next run, last result',
  async run(args, io) {
    const { flags } = parseArgs(args, { json: 'boolean' })
    const schedules = new Map(loadSchedules().map((s) => [s.job, s]))
    const ids = listJobIds()
    const jobs = await Promise.all(ids.map(async (id) => ({ id, job: await loadJob(id) })))
    const last = await withDatabase(
      io,
      (sql) =>
        sql<LastRun[]>`
        select distinct on (job) job, status, started_at, finished_at
        from jobs.runs where status <> 'skipped'
        order by job, started_at desc`,
    )
    const lastByJob = new Map(last.map((r) => [r.job, r]))
    const now = new Date()
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
      }
    })
    if (flags.json) {
      io.stdout(JSON.stringify(rows, null, 2))
      return 0
    }
    io.stdout(
      table(
        ['job', 'schedule', 'next run (UTC)', 'last result'],
        rows.map((r) => [
          r.job + (r.critical ? ' *' : ''),
          r.schedule ? `${r.schedule.cron.join(', ')}  ${r.schedule.words}` : 'no workflow',
          r.nextRun ? r.nextRun.replace('T', ' ').slice(0, 16) : '-',
          r.lastRun
            ? `${r.lastRun.status} ${r.lastRun.startedAt.replace('T', ' ').slice(0, 16)}${
                r.lastRun.durationMs === null ? '' : ` (${formatMs(r.lastRun.durationMs)})`
              }`
            : 'never run',
        ]),
      ),
    )
    io.stdout('\n* critical: a failure alerts')
    return 0
  },
}

export default list
