import { jobScript, loadJobInfos } from '../../project/registry.ts'
import { activePauses, type Pause, parseUntil, pauseJobs } from '../../records/pauses.ts'
import { liveRuns } from '../../records/runs.ts'
import { ConfigError } from '../../runtime/errors.ts'
import { relativeTime } from '../../text/relative.ts'
import { textTable } from '../../text/table.ts'
import { type Command, databaseSettings, outputWidth, withDatabase } from './command.ts'

/** Renders pauses as a table (or a line saying there are none). */
export function pauseTable(pauses: readonly Pause[], width?: number): string {
  if (pauses.length === 0) return 'no job is paused'
  return textTable(
    [
      { head: 'paused', min: Number.POSITIVE_INFINITY },
      { head: 'until (UTC)', min: 16 },
      { head: 'reason', min: 12 },
      'by',
    ],
    pauses.map((p) => [p.target, p.until.toISOString().slice(0, 16).replace('T', ' '), p.reason, p.createdBy ?? '-']),
    width,
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
      io.stdout(pauseTable(await withDatabase(io, activePauses, { readOnly: { empty: () => [] } }), outputWidth(io)))
      return 0
    }
    if (extra) throw new ConfigError(`unexpected argument "${extra}"`)
    if (target !== 'all') jobScript(target)
    if (typeof flags.until !== 'string') throw new ConfigError('--until is required: a pause must end by itself')
    if (typeof flags.reason !== 'string' || !flags.reason.trim()) throw new ConfigError('--reason is required')
    const until = parseUntil(flags.until)
    const by = io.env.GITHUB_ACTOR ?? io.env.USER ?? io.env.LOGNAME
    const [created, running] = await withDatabase(
      io,
      async (sql) =>
        [await pauseJobs(sql, { target, until, reason: flags.reason as string, by }), await liveRuns(sql)] as const,
    )
    io.stdout(
      `paused ${target === 'all' ? 'all jobs' : target} until ${created.until.toISOString()}: ${created.reason}`,
    )
    const now = new Date()
    const exempt = target === 'all' ? (await loadJobInfos()).filter((j) => j.exemptFromPauseAll !== undefined) : []
    for (const j of exempt)
      io.stdout(
        `  ${j.id} is exempt from pause all (${j.exemptFromPauseAll}): it keeps running; to stop it too: pnpm jobs pause ${j.id} --until ${flags.until} --reason ${JSON.stringify(flags.reason)}`,
      )
    // A run already under way finishes (a pause holds runs at their start); its next run is skipped.
    const held = running.filter((r) => (target === 'all' ? !exempt.some((j) => j.id === r.job) : r.job === target))
    for (const r of held)
      io.stdout(
        `  ${r.job} is running now (run ${r.id}, started ${relativeTime(r.startedAt, now)}): it finishes that run; the next one is skipped`,
      )
    return 0
  },
}

export default pause
