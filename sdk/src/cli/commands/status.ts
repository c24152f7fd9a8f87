import fs from 'node:fs/promises'
import path from 'node:path'
import { loadJobInfos } from '../../project/registry.ts'
import { loadSchedules, repoRoot } from '../../schedules/schedules.ts'
import { renderStatusHtml } from '../../status/html.ts'
import { buildStatus, type JobStatus, loadStatus, percent, relativeTime, utcMinute } from '../../status/status.ts'
import { formatMs } from '../../text/duration.ts'
import { type Command, databaseSettings, withDatabase } from './command.ts'
import { table } from './history.ts'

/** Renders the status as an aligned text table, one row per job. */
export function statusTable(jobs: readonly JobStatus[], now: Date): string {
  return table(
    ['job', 'last result', 'when', 'next run', 'success 30d', 'median'],
    jobs.map((j) => [
      j.job + (j.critical ? ' *' : ''),
      j.paused ? `paused: ${j.paused.reason}` : (j.lastRun?.status.replace('_', ' ') ?? 'never run'),
      j.lastRun ? `${utcMinute(j.lastRun.startedAt)} (${relativeTime(j.lastRun.startedAt, now)})` : '-',
      j.nextRun ? `${utcMinute(j.nextRun)} (${relativeTime(j.nextRun, now)})` : '-',
      j.successRate === undefined ? '-' : `${percent(j.successRate)} of ${j.finishedRuns}`,
      j.medianMs === undefined ? '-' : formatMs(j.medianMs),
    ]),
  )
}

/** `pnpm jobs status [--html FILE] [--json]`: last result, next run, 30-day success rate and median duration per job. */
const status: Command = {
  name: 'status',
  usage: 'status [--html FILE] [--json]',
  description: 'per job: last result, next run, 30-day success rate, median duration (--html: a page)',
  flags: {
    html: { type: 'string', value: 'FILE', description: 'write the status page to FILE' },
    json: { type: 'boolean', description: 'print JSON instead of a table' },
    root: {
      type: 'string',
      value: 'dir',
      description: 'repository whose jobs and workflows are read (default: this checkout)',
    },
  },
  settings: [
    ...databaseSettings,
    { name: 'ADMIN_JOBS_ROOT', kind: 'directory', description: 'repository to read when --root is not given' },
  ],
  async run({ flags }, io) {
    const root = path.resolve((flags.root as string | undefined) ?? io.env.ADMIN_JOBS_ROOT ?? repoRoot())
    const jobs = await loadJobInfos(root)
    const now = new Date()
    const input = { jobs, schedules: loadSchedules(root), now }
    const rows = await withDatabase(io, (sql) => loadStatus(sql, input), {
      readOnly: { empty: () => buildStatus(input, { aggregates: [], recentRows: [], pauses: [] }) },
    })
    if (typeof flags.html === 'string') {
      const file = path.resolve(flags.html)
      await fs.mkdir(path.dirname(file), { recursive: true })
      await fs.writeFile(file, renderStatusHtml(rows, now))
      io.stdout(`wrote ${file}`)
    }
    if (flags.json) io.stdout(JSON.stringify(rows, null, 2))
    else if (typeof flags.html !== 'string') {
      io.stdout(statusTable(rows, now))
      io.stdout('\n* critical: a failure alerts')
    }
    return 0
  },
}

export default status
