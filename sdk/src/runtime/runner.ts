import type { Config, Env } from '../config/config.ts'
import type { Trigger } from '../records/runs.ts'
import { parseCommandLine, wantsHelp } from './args.ts'
import type { StopReason } from './deadline.ts'
import { ConfigError, firstLine, toError } from './errors.ts'
import { execute } from './execute.ts'
import { exitCodes } from './exit-codes.ts'
import { deliver, exitCodeOf, record, release, summarise } from './finish.ts'
import { heartbeatHook } from './hooks/heartbeat.ts'
import { outageHook } from './hooks/outage.ts'
import { outcomeHook } from './hooks/outcome.ts'
import { pauseHook } from './hooks/pause.ts'
import { slotHook } from './hooks/slot.ts'
import { summaryHook } from './hooks/summary.ts'
import type { RunHook } from './hooks.ts'
import type { Run, StartedRun } from './run.ts'
import { configure, connect, start } from './setup.ts'
import type { Job, JobDefinition } from './types.ts'

/** Parses `--dry-run` and the job's declared flags; anything else is a usage error (exit 2). */
export function parseFlags(
  argv: readonly string[],
  declared: JobDefinition['flags'] = {},
): Record<string, string | boolean | undefined> {
  return parseCommandLine(argv, { 'dry-run': 'boolean', ...declared }).flags
}

/**
 * What started this run, from the Actions environment (or ADMIN_JOBS_TRIGGER, or `local`): `dispatch` is a
 * workflow_dispatch that names its slot (ADMIN_JOBS_SLOT, as `pnpm jobs dispatch` does); a manual dispatch stays
 * `workflow_dispatch`.
 */
export function detectTrigger(env: Env, config: Config): Trigger {
  if (env.ADMIN_JOBS_TRIGGER) return env.ADMIN_JOBS_TRIGGER
  if (!config.actions) return 'local'
  if (config.github.runAttempt > 1) return 'rerun'
  if (config.github.eventName === 'workflow_dispatch' && env.ADMIN_JOBS_SLOT?.trim()) return 'dispatch'
  return config.github.eventName ?? 'unknown'
}

/** The URL of this Actions run attempt, when on Actions. */
export function runUrlOf(config: Config): string | undefined {
  const { serverUrl, repository, runId, runAttempt } = config.github
  if (!config.actions || !repository || !runId) return undefined
  return `${serverUrl}/${repository}/actions/runs/${runId}/attempts/${runAttempt}`
}

/** Options of runJob; defaults come from the process. */
export interface RunOptions {
  id: string
  argv?: readonly string[]
  env?: Env
  /** The features plugged into the phases (default: pause, outage guard, outcome alerts, heartbeat, summary). */
  hooks?: readonly RunHook[]
  /** Where log lines go (default: stdout and stderr); tests collect them. */
  output?: (stream: 'out' | 'err', line: string) => void
  /** Ends the process at once: on a second SIGINT/SIGTERM, or when a stop overruns its bound (entry scripts only). */
  exitNow?: (reason: StopReason) => void
}

/** The features every run has, in the order they see each phase. */
export function defaultHooks(): RunHook[] {
  return [pauseHook, slotHook, outageHook, outcomeHook, heartbeatHook(), summaryHook]
}

/**
 * Runs one job end to end and returns its exit code: configure → connect → lock and start → execute under the
 * deadline → record → summarise → release (docs/architecture.md walks through it).
 */
export async function runJob(job: Job, options: RunOptions): Promise<number> {
  if (wantsHelp(options.argv ?? process.argv.slice(2))) {
    const { renderJobHelp } = await import('./help.ts')
    ;(options.output ?? ((_s, line) => process.stdout.write(`${line}\n`)))('out', renderJobHelp(job, options.id))
    return exitCodes.succeeded
  }
  const configured = await configure(job, { ...options, hooks: options.hooks ?? defaultHooks() })
  if (typeof configured === 'number') return configured
  const run = configured
  let started: StartedRun | undefined
  const track = (r: StartedRun) => {
    started = r
    active.add(r)
    run.cleanups.push(async () => void active.delete(r))
  }
  try {
    run.log.info(`starting${run.dryRun ? ' (dry run)' : ''}`, { trigger: run.trigger, attempt: run.attempt })
    run.group('setup: database, migrations, lock')
    const connected = await connect(run)
    if (!connected) return run.deadline.reason ? stoppedCode(run) : exitCodes.failed
    const begun = await start(connected)
    if ('skipped' in begun) return run.deadline.reason ? stoppedCode(run) : exitCodes.skipped
    track(begun)
    const outcome = await record(begun, await execute(begun))
    await deliver(begun)
    await summarise(begun, outcome)
    return exitCodeOf(run, outcome)
  } catch (err) {
    return await runnerFailed(run, started, toError(err))
  } finally {
    await release(run)
  }
}

/** Runs under way in this process, for the last-resort handler. */
const active = new Set<StartedRun>()

/**
 * The last resort, when something no catch could reach crashed the process (an error thrown from a socket callback):
 * record every run under way as failed (with its critical alert, queued in the same transaction) and try to deliver
 * that alert, all bounded by the stop budget. The caller exits afterwards.
 */
export async function recordCrash(error: Error): Promise<void> {
  await Promise.all(
    [...active].map(async (run) => {
      run.log.error(`the process crashed: ${run.mask(firstLine(error))}`, { error })
      await record(run, { status: 'failed', stats: {}, error, durationMs: Date.now() - run.startedAt.getTime() })
      await deliver(run)
      await run.runLog.flush(run.control, run.runId).catch(() => {})
    }),
  )
}

/** The runner's own bookkeeping failed (history, lock, a lost connection): record what it can, and fail. */
async function runnerFailed(run: Run, started: StartedRun | undefined, error: Error): Promise<number> {
  run.group()
  run.log.error(`runner error: ${run.mask(firstLine(error))}`, { error })
  if (started) {
    await record(started, { status: 'failed', stats: {}, error, durationMs: 0 }).catch(() => {})
  }
  return run.deadline.reason ? stoppedCode(run) : exitCodes.failed
}

function stoppedCode(run: Run): number {
  const reason = run.deadline.reason
  if (reason === 'SIGINT' || reason === 'SIGTERM') return exitCodes[reason]
  return reason === 'timed_out' ? exitCodes.timed_out : exitCodes.failed
}

/** The run's clock: real time, or ADMIN_JOBS_NOW pinned (tests and replays of a past day). */
export function clock(env: Env): () => Date {
  const pinned = env.ADMIN_JOBS_NOW
  if (!pinned) return () => new Date()
  const at = new Date(pinned)
  if (Number.isNaN(at.getTime()))
    throw new ConfigError(`ADMIN_JOBS_NOW is not a timestamp (got "${pinned}")`, { variable: 'ADMIN_JOBS_NOW' })
  return () => new Date(at)
}
