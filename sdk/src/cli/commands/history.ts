import { type JobInfo, listJobIds, loadJobInfos } from '../../project/registry.ts'
import { readRunLog, runLogLimits } from '../../records/run-logs.ts'
import { getRun, listRuns } from '../../records/runs.ts'
import { ConfigError } from '../../runtime/errors.ts'
import type { LogEntry } from '../../runtime/log.ts'
import { formatMs } from '../../text/duration.ts'
import { textTable } from '../../text/table.ts'
import { type Command, databaseSettings, outputWidth, positiveInt, withDatabase } from './command.ts'

/** `pnpm jobs history [<job-id>] [--limit N] [--json]`, or `history <run-id> [--json]`: one run in full. */
const history: Command = {
  name: 'history',
  usage: 'history [<job-id> | <run-id>] [--limit N] [--json]',
  description: 'run history, newest first (one run in full, with its log, when given its id)',
  flags: {
    limit: { type: 'string', value: 'N', description: 'show at most N runs (default 20)' },
    json: { type: 'boolean', description: 'print JSON instead of a table' },
  },
  positionals: true,
  settings: [
    ...databaseSettings,
    { name: 'COLUMNS', kind: 'number', description: 'the width the table fits (default: the terminal’s)' },
  ],
  notes: ['A number is a run id (as the table’s first column shows): that run in full, its stats, error, log lines.'],
  async run({ flags, positional }, io) {
    const [target, extra] = positional
    if (extra) throw new ConfigError(`unexpected argument "${extra}"`)
    if (target && /^\d+$/.test(target)) {
      if (flags.limit !== undefined) throw new ConfigError('--limit goes with a job id, not a run id')
      return showRun(Number(target), Boolean(flags.json), io)
    }
    const limit = positiveInt(flags.limit, 'limit', 20)
    const job = target
    const runs = await withDatabase(io, (sql) => listRuns(sql, { job, limit }), { readOnly: { empty: () => [] } })
    // A retired job's runs stay readable; a name that is neither a job nor in the history is a typo.
    const known = listJobIds()
    if (job && runs.length === 0 && !known.includes(job)) {
      throw new ConfigError(`unknown job "${job}" (known jobs: ${known.join(', ')})`)
    }
    if (flags.json) {
      io.stdout(JSON.stringify(runs, null, 2))
      return 0
    }
    if (runs.length === 0) {
      io.stdout('no runs recorded yet')
      return 0
    }
    const headlines = new Map((await loadJobInfos()).map((j) => [j.id, j.headline]))
    const rows = runs.map((r) => [
      String(r.id),
      r.job,
      r.status.replace('_', ' ') + (r.dryRun ? ' (dry)' : ''),
      r.trigger + (r.attempt > 1 ? ` #${r.attempt}` : ''),
      r.startedAt.replace('T', ' ').slice(5, 16),
      r.durationMs === null ? '-' : formatMs(r.durationMs),
      r.error ? (r.error.split('\n')[0] ?? '') : summarize(r.stats, headlines.get(r.job)),
    ])
    io.stdout(
      textTable(
        [
          { head: 'id', min: 12 },
          { head: 'job', min: Number.POSITIVE_INFINITY },
          { head: 'status', min: 9 },
          { head: 'trigger', min: 8, drop: 1 },
          { head: 'started', min: 11 },
          { head: 'duration', min: 8 },
          { head: 'result', min: 10 },
        ],
        rows,
        outputWidth(io),
      ),
    )
    io.stdout('\nTimes in UTC. One run in full, with its log: pnpm jobs history <id>')
    return 0
  },
}

/** `history <run-id>`: the run's record, its note, stats, error with stack and log lines. */
async function showRun(id: number, json: boolean, io: Parameters<Command['run']>[1]): Promise<number> {
  const found = await withDatabase(
    io,
    async (sql) => {
      const run = await getRun(sql, id)
      return run ? { run, log: await readRunLog(sql, id) } : undefined
    },
    { readOnly: { empty: () => undefined } },
  )
  if (!found) throw new ConfigError(`no run ${id} in the history (\`pnpm jobs history\` lists the run ids)`)
  const { run, log } = found
  if (json) {
    const { note: _note, ...record } = run
    io.stdout(JSON.stringify({ ...record, note: run.note, log: log.map(logJson) }, null, 2))
    return 0
  }
  const field = (name: string, value: string) => `${`${name}:`.padEnd(10)} ${value}`
  const lines = [
    `run ${run.id} of ${run.job}: ${run.status.replace('_', ' ')}${run.dryRun ? ' (dry run)' : ''}`,
    field('trigger', `${run.trigger}, attempt ${run.attempt}`),
    field('started', `${run.startedAt.replace('T', ' ').slice(0, 23)} UTC`),
    field(
      'finished',
      run.finishedAt
        ? `${run.finishedAt.replace('T', ' ').slice(0, 23)} UTC (${formatMs(run.durationMs ?? 0)})`
        : 'still running',
    ),
    field('run URL', run.runUrl ?? '- (not on Actions)'),
  ]
  if (run.note) lines.push(field('note', run.note))
  const stats = Object.entries(run.stats ?? {})
  lines.push('', stats.length ? 'stats:' : 'stats:    none')
  const width = Math.max(0, ...stats.map(([k]) => k.length))
  for (const [k, v] of stats)
    lines.push(`  ${k.padEnd(width)}  ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
  if (run.error) lines.push('', 'error:', ...run.error.split('\n').map((l) => `  ${l}`))
  lines.push(
    '',
    log.length ? `log (${log.length} line(s); at most ${runLogLimits.lines} are kept a run):` : 'log:      none saved',
  )
  for (const entry of log)
    lines.push(`  ${entry.at.toISOString().slice(11, 23)} ${entry.level.toUpperCase().padEnd(5)} ${entry.text}`)
  io.stdout(lines.join('\n'))
  return 0
}

const logJson = (e: LogEntry) => ({ at: e.at.toISOString(), level: e.level, text: e.text })

/** Keys that time a run's parts rather than say what it did: left out of the fallback summary. */
const timingKey = /(^ms$|Ms$|^duration)/

/**
 * What a run did, for the history table's result column: the job's headline stats (its definition's `headline`) in
 * their order, else the first four plain stats that are not timings; a skipped run's reason as it is.
 */
const rank = (v: unknown) => (typeof v === 'number' ? (v !== 0 ? 0 : 2) : typeof v === 'boolean' ? 3 : 1)

export function summarize(stats: Record<string, unknown> | null, headline?: JobInfo['headline']): string {
  if (!stats) return ''
  if (typeof stats.reason === 'string' && Object.keys(stats).length <= 3) return stats.reason
  const plain = (v: unknown) => v !== null && typeof v !== 'object'
  const keys = headline?.length
    ? headline.filter((k) => plain(stats[k]))
    : // Stats come back from jsonb with their keys reordered (shortest first): counts first says more than that order.
      Object.keys(stats)
        .filter((k) => plain(stats[k]) && !timingKey.test(k))
        .sort((a, b) => rank(stats[a]) - rank(stats[b]))
        .slice(0, 4)
  return keys.map((k) => `${k}=${stats[k]}`).join(' ')
}

export default history
