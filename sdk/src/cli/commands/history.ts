import { listJobIds } from '../../project/registry.ts'
import { listRuns } from '../../records/runs.ts'
import { ConfigError } from '../../runtime/errors.ts'
import { formatMs } from '../../text/duration.ts'
import { type Command, databaseSettings, positiveInt, withDatabase } from './command.ts'

/** `pnpm jobs history [<job-id>] [--limit N] [--json]`: run history, newest first. */
const history: Command = {
  name: 'history',
  usage: 'history [<job-id>] [--limit N] [--json]',
  description: 'run history, newest first (one run in full when given its id)',
  flags: {
    limit: { type: 'string', value: 'N', description: 'show at most N runs (default 20)' },
    json: { type: 'boolean', description: 'print JSON instead of a table' },
  },
  positionals: true,
  settings: databaseSettings,
  async run({ flags, positional }, io) {
    const limit = positiveInt(flags.limit, 'limit', 20)
    const job = positional[0]
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
    const rows = runs.map((r) => [
      String(r.id),
      r.job,
      r.status + (r.dryRun ? ' (dry)' : ''),
      r.trigger + (r.attempt > 1 ? ` #${r.attempt}` : ''),
      r.startedAt.replace('T', ' ').slice(0, 19),
      r.durationMs === null ? '-' : formatMs(r.durationMs),
      r.error ? (r.error.split('\n')[0] ?? '').slice(0, 60) : summarize(r.stats),
    ])
    io.stdout(table(['id', 'job', 'status', 'trigger', 'started (UTC)', 'duration', 'result'], rows))
    return 0
  },
}

function summarize(stats: Record<string, unknown> | null): string {
  if (!stats) return ''
  return Object.entries(stats)
    .filter(([, v]) => typeof v !== 'object')
    .slice(0, 4)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')
}

/** Renders rows as an aligned plain-text table. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd()
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

export default history
