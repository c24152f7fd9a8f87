import os from 'node:os'
import path from 'node:path'
import { parseConfig } from '../../config/config.ts'
import { openDatabase } from '../../database/client.ts'
import { createGitHubClient } from '../../github/client.ts'
import { type DispatchResult, defaultMaxSlotAgeMs, dispatchTick, nextSlotAfter } from '../../github/dispatch.ts'
import { loadJobInfos } from '../../project/registry.ts'
import { activePauses, pauseFor } from '../../records/pauses.ts'
import { ConfigError, firstLine, toError } from '../../runtime/errors.ts'
import { createLogger } from '../../runtime/log.ts'
import { sleep } from '../../runtime/retry.ts'
import { clock } from '../../runtime/runner.ts'
import { loadSchedules, repoRoot } from '../../schedules/schedules.ts'
import { toMs } from '../../text/duration.ts'
import { type Command, databaseSettings } from './command.ts'

/** How long after a fire time a looping dispatcher wakes: GitHub's own clock and ours may differ by a few seconds. */
const settleMs = 5_000

/**
 * `pnpm jobs dispatch [--once]`: triggers `workflow_dispatch`, through the GitHub API, for every job whose current
 * slot is due and not yet served, running or claimed, passing the slot as the `slot` input. `--once` is one tick;
 * otherwise it loops, sleeping until the next fire time of any schedule, until SIGTERM or SIGINT.
 */
const dispatch: Command = {
  name: 'dispatch',
  usage: 'dispatch [--once] [--dry-run]',
  description: 'trigger workflow_dispatch for due jobs through the GitHub API (a punctual clock beside GitHub cron)',
  flags: {
    once: { type: 'boolean', description: 'one tick, then exit (for a cron line, a systemd timer, a CronJob)' },
    'dry-run': { type: 'boolean', description: 'say what would be dispatched, dispatch nothing' },
    'max-age': {
      type: 'string',
      value: 'duration',
      description: 'leave slots older than this to the watchdog (default 6h)',
    },
    root: { type: 'string', value: 'dir', description: 'repository whose workflows are read (default: this checkout)' },
  },
  settings: [
    ...databaseSettings,
    { name: 'GITHUB_TOKEN', kind: 'text', description: 'a token with Actions: write on the repository (required)' },
    { name: 'GITHUB_REPOSITORY', kind: 'owner/name', description: 'the repository whose workflows run the jobs' },
    { name: 'GITHUB_API_URL', kind: 'URL', default: 'https://api.github.com', description: 'GitHub Enterprise API' },
    { name: 'ADMIN_JOBS_ROOT', kind: 'directory', description: 'repository to read when --root is not given' },
  ],
  notes: [
    'Each slot is claimed in jobs.dispatches before it is sent: two dispatchers, or a dispatcher and the watchdog, never send one slot twice.',
    "GitHub's own late cron run of a served slot ends skipped, so its schedule can stay on beside the dispatcher.",
  ],
  exitCodes: [
    { code: '0', meaning: '--once: every due slot dispatched or left alone; loop: stopped by SIGTERM or SIGINT' },
    { code: '1', meaning: '--once: GitHub or the database failed, or refused a dispatch' },
  ],
  async run({ flags }, io) {
    const root = path.resolve((flags.root as string | undefined) ?? io.env.ADMIN_JOBS_ROOT ?? repoRoot())
    const config = parseConfig(io.env)
    const { token, repository, apiUrl } = config.github
    if (!token) throw new ConfigError('GITHUB_TOKEN is not set: dispatching needs a token with Actions: write')
    if (!repository || !/^[\w.-]+\/[\w.-]+$/.test(repository))
      throw new ConfigError(`GITHUB_REPOSITORY must be owner/name (got "${repository ?? ''}")`)
    let maxAgeMs = defaultMaxSlotAgeMs
    if (typeof flags['max-age'] === 'string') {
      try {
        maxAgeMs = toMs(flags['max-age'])
      } catch {
        throw new ConfigError(`--max-age must be a duration such as 30m or 6h (got "${flags['max-age']}")`)
      }
    }
    const now = clock(io.env)
    const schedules = loadSchedules(root).filter((s) => s.cron.length > 0)
    if (schedules.length === 0) throw new ConfigError(`no scheduled workflow under ${root}/.github/workflows`)
    const exempt = new Set((await loadJobInfos(root)).filter((j) => j.exemptFromPauseAll).map((j) => j.id))
    const log = createLogger({ scope: 'dispatch', secrets: config.secrets, write: (_s, line) => io.stdout(line) })
    const stop = new AbortController()
    const client = createGitHubClient({ token, repository, apiUrl, log, signal: stop.signal })
    const db = await openDatabase(config, { log, applicationName: 'admin-jobs-dispatch' })
    const by = `dispatcher@${os.hostname()}`
    const tick = async (): Promise<DispatchResult[]> => {
      const pauses = await activePauses(db.sql)
      const results = await dispatchTick({
        sql: db.sql,
        client,
        schedules,
        by,
        now: now(),
        log,
        dryRun: flags['dry-run'] === true,
        maxAgeMs,
        isPaused: (job) => pauseFor(job, pauses, exempt.has(job)) !== undefined,
      })
      for (const r of results.filter((x) => x.outcome !== 'taken' && x.outcome !== 'claimed'))
        log.info(`${r.job} slot ${r.slot.toISOString()}: ${r.outcome}${r.detail ? ` (${r.detail})` : ''}`)
      return results
    }
    try {
      if (flags.once) {
        const results = await tick()
        return results.some((r) => r.outcome === 'refused' || r.outcome === 'unknown') ? 1 : 0
      }
      const onSignal = () => stop.abort()
      process.once('SIGTERM', onSignal)
      process.once('SIGINT', onSignal)
      log.info(`dispatching ${schedules.length} schedule(s) on time; SIGTERM or Ctrl-C stops`)
      while (!stop.signal.aborted) {
        await tick().catch((err) => {
          // One failed tick (GitHub or the database away) must not end the clock: the next one tries again.
          if (!stop.signal.aborted) log.error(`tick failed: ${firstLine(toError(err))}`)
        })
        const next = nextSlotAfter(schedules, now())
        const waitMs = next ? next.getTime() - now().getTime() + settleMs : 60_000
        await sleep(Math.max(1_000, waitMs), stop.signal).catch(() => {})
      }
      process.off('SIGTERM', onSignal)
      process.off('SIGINT', onSignal)
      return 0
    } finally {
      await db.close()
    }
  },
}

export default dispatch
