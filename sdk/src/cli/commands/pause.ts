import { jobScript, loadJobInfos } from '../../project/registry.ts'
import { activePauses, type Pause, parseUntil, pauseJobs } from '../../records/pauses.ts'
import { ConfigError } from '../../runtime/errors.ts'
import { type Command, databaseSettings, withDatabase } from './command.ts'
import { table } from './history.ts'

/** Renders pauses as a table (or a line saying there are none). */
export function pauseTable(pauses: readonly Pause[]): string {
  if (pauses.length === 0) return 'no job is paused'
  return table(
    ['paused', 'until (UTC)', 'reason', 'by'],
    pauses.map((p) => [p.target, p.until.toISOString().slice(0, 16).replace('T', ' '), p.reason, p.createdBy ?? '-']),
  )
}

/** `pnpm jobs pause <job-id|all> --until <time> --reason <text>`: maintenance mode; without arguments lists pauses. */
const pause: Command = {
  name: 'pause',
  usage: 'pause [<job-id|all> --until <time> --reason <text>]',
  description: 'maintenance mode: runs end at once as skipped until the time',
  flags: {
    until: {
      type: 'string',
      value: 'time',
      description: 'when the pause ends: a UTC time (2026-12-01 06:00) or a span (90m, 2h, 1d)',
    },
    reason: { type: 'string', value: 'text', description: 'why, shown on every skipped run' },
  },
  positionals: true,
  settings: [
    ...databaseSettings,
    { name: 'GITHUB_ACTOR', kind: 'text', description: 'recorded as who paused (else USER, else LOGNAME)' },
  ],
  notes: ['Without arguments it lists the pauses in force.'],
  async run({ flags, positional }, io) {
    const [target, extra] = positional
    if (!target) {
      if (flags.until || flags.reason)
        throw new ConfigError('usage: pnpm jobs pause <job-id|all> --until <time> --reason <text>')
      io.stdout(pauseTable(await withDatabase(io, activePauses, { readOnly: { empty: () => [] } })))
      return 0
    }
    if (extra) throw new ConfigError(`unexpected argument "${extra}"`)
    if (target !== 'all') jobScript(target)
    if (typeof flags.until !== 'string') throw new ConfigError('--until is required: a pause must end by itself')
    if (typeof flags.reason !== 'string' || !flags.reason.trim()) throw new ConfigError('--reason is required')
    const until = parseUntil(flags.until)
    const by = io.env.GITHUB_ACTOR ?? io.env.USER ?? io.env.LOGNAME
    const created = await withDatabase(io, (sql) =>
      pauseJobs(sql, { target, until, reason: flags.reason as string, by }),
    )
    io.stdout(
      `paused ${target === 'all' ? 'all jobs' : target} until ${created.until.toISOString()}: ${created.reason}`,
    )
    if (target === 'all') {
      const exempt = (await loadJobInfos()).filter((j) => j.exemptFromPauseAll !== undefined)
      for (const j of exempt)
        io.stdout(
          `  ${j.id} keeps running (exempt from pause all: ${j.exemptFromPauseAll}); pause it by name to stop it`,
        )
    }
    return 0
  },
}

export default pause
