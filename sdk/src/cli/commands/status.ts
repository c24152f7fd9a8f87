import fs from 'node:fs/promises'
import path from 'node:path'
import { loadJobInfos } from '../../project/registry.ts'
import { ConfigError } from '../../runtime/errors.ts'
import { describeLateness } from '../../schedules/lateness.ts'
import { loadSchedules, repoRoot } from '../../schedules/schedules.ts'
import { renderStatusHtml } from '../../status/html.ts'
import { serveStatus } from '../../status/serve.ts'
import {
  buildReport,
  buildStatus,
  type JobStatus,
  loadStatusReport,
  type OpenIncident,
  percent,
  relativeTime,
  type StatusReport,
} from '../../status/status.ts'
import { formatMs } from '../../text/duration.ts'
import { cut, textTable } from '../../text/table.ts'
import { type Command, databaseSettings, outputWidth, positiveInt, waitForStop, withDatabase } from './command.ts'

/** Renders the status as an aligned text table, one row per job, no wider than `width` when given. */
export function statusTable(jobs: readonly JobStatus[], now: Date, width?: number): string {
  return textTable(
    [
      { head: 'job', min: Number.POSITIVE_INFINITY },
      { head: 'last result', min: 14 },
      { head: 'when', min: 10 },
      { head: 'next run', min: 13 },
      { head: 'lateness', min: 8, drop: 1 },
      { head: 'success 30d', drop: 3 },
      { head: 'median', drop: 2 },
    ],
    jobs.map((j) => [
      j.job + (j.critical ? ' *' : ''),
      j.lastRun?.status.replace('_', ' ') ?? 'never run',
      j.lastRun ? relativeTime(j.lastRun.startedAt, now) : '-',
      // The pause's end and reason are among the open incidents above.
      j.paused ? 'paused' : j.nextRun ? relativeTime(j.nextRun, now) : '-',
      describeLateness(j.lateness, formatMs),
      j.successRate === undefined ? '-' : `${percent(j.successRate)} of ${j.finishedRuns}`,
      j.medianMs === undefined ? '-' : formatMs(j.medianMs),
    ]),
    width,
  )
}

/** The open incidents as lines, most severe first (or a line saying there are none), each cut to `width`. */
export function incidentLines(incidents: readonly OpenIncident[], now: Date, width?: number): string[] {
  if (incidents.length === 0) return ['No open incidents: nothing alerting, late, failing or paused.']
  const fit = (line: string) => (width ? cut(line, width) : line)
  return [
    `Open incidents (${incidents.length}):`,
    ...incidents.flatMap((i) => [
      fit(
        `  ${i.severity === 'critical' ? '!!' : i.severity === 'warning' ? '! ' : '- '} ${i.kind.padEnd(8)} ${i.title}${
          i.since && i.kind !== 'paused' ? ` (since ${relativeTime(i.since, now)})` : ''
        }`,
      ),
      // A security incident's title already says what its detail does.
      ...(i.detail && i.kind !== 'security' ? [fit(`              ${i.detail.split('\n')[0]}`)] : []),
    ]),
  ]
}

/** The report as `status --json` prints it (docs/reference.md): `openIncidents` and `jobs`, plus `generatedAt`, `daily`. */
export function statusJson(report: StatusReport) {
  return report
}

/** `pnpm jobs status [--json] [--html FILE] [--serve [--port N]]`: open incidents first, then every job. */
const status: Command = {
  name: 'status',
  usage: 'status [--json] [--html FILE] [--serve [--port N]]',
  description:
    'open incidents first (alerts, late or failing jobs, pauses), then every job (--html: a page; --serve: live)',
  flags: {
    html: { type: 'string', value: 'FILE', description: 'write the status page to FILE' },
    json: { type: 'boolean', description: 'print JSON instead of a table' },
    serve: {
      type: 'boolean',
      description: 'serve the page live on 127.0.0.1 (reloads itself; /status.json too) until SIGINT or SIGTERM',
    },
    port: { type: 'string', value: 'N', description: 'the port --serve listens on (default 4780; 0: any free one)' },
    root: {
      type: 'string',
      value: 'dir',
      description: 'repository whose jobs and workflows are read (default: this checkout)',
    },
  },
  settings: [
    ...databaseSettings,
    { name: 'ADMIN_JOBS_ROOT', kind: 'directory', description: 'repository to read when --root is not given' },
    { name: 'COLUMNS', kind: 'number', description: 'the width the table fits (default: the terminal’s)' },
  ],
  notes: ['With --serve it runs until SIGINT or SIGTERM, then stops serving and exits 0.'],
  async run({ flags }, io) {
    const root = path.resolve((flags.root as string | undefined) ?? io.env.ADMIN_JOBS_ROOT ?? repoRoot())
    if (flags.port !== undefined && !flags.serve) throw new ConfigError('--port goes with --serve')
    const port = flags.port === '0' ? 0 : positiveInt(flags.port, 'port', 4780)
    const jobs = await loadJobInfos(root)
    const schedules = loadSchedules(root)
    const inputAt = (now: Date) => ({ jobs, schedules, now })
    const empty = (now: Date) =>
      buildReport(buildStatus(inputAt(now), { aggregates: [], recentRows: [], pauses: [] }), [], now)
    if (flags.serve) {
      return withDatabase(
        io,
        async (sql) => {
          // Listening for the signals before saying where it serves: a stop right after that line must be clean.
          const stop = waitForStop(io)
          const server = await serveStatus(() => loadStatusReport(sql, inputAt(new Date())), { port, json: statusJson })
          io.stdout(`serving the status page on ${server.url} (JSON: ${server.url}status.json); Ctrl-C stops`)
          const signal = await stop
          await server.close()
          io.stdout(`${signal}: stopped serving`)
          return 0
        },
        { readOnly: { empty: () => 0 } },
      )
    }
    const now = new Date()
    const report = await withDatabase(io, (sql) => loadStatusReport(sql, inputAt(now)), {
      readOnly: { empty: () => empty(now) },
    })
    if (typeof flags.html === 'string') {
      const file = path.resolve(flags.html)
      await fs.mkdir(path.dirname(file), { recursive: true })
      await fs.writeFile(file, renderStatusHtml(report))
      io.stdout(`wrote ${file}`)
    }
    if (flags.json) io.stdout(JSON.stringify(statusJson(report), null, 2))
    else if (typeof flags.html !== 'string') {
      const width = outputWidth(io)
      io.stdout(incidentLines(report.openIncidents, now, width).join('\n'))
      io.stdout('')
      io.stdout(statusTable(report.jobs, now, width))
      io.stdout('\n* critical: a failure alerts')
    }
    return 0
  },
}

export default status
