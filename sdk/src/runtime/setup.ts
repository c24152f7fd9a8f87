import { createEnvReader, type Env, parseConfig, secretVariables } from '../config/config.ts'
import { createMasker } from '../config/redact.ts'
import { abandon, configuredUrl, connect as connectPool, openDatabase } from '../database/client.ts'
import { tryLockJob } from '../records/locks.ts'
import { createRunLog } from '../records/run-logs.ts'
import { closeDeadRuns, heartbeat, heartbeatEveryMs, recordSkipped, startRun } from '../records/runs.ts'
import { toMs } from '../text/duration.ts'
import { createDeadline } from './deadline.ts'
import { ConfigError, firstLine, toError } from './errors.ts'
import { emit, type Skip, skipOf } from './hooks.ts'
import { createLogger } from './log.ts'
import type { ConnectedRun, Core, Flags, Run, StartedRun } from './run.ts'
import { clock, detectTrigger, parseFlags, type RunOptions, runUrlOf } from './runner.ts'
import { resolveSlot } from './slot.ts'
import { createSummary } from './summary.ts'
import type { Job } from './types.ts'

/**
 * Configure: flags, configuration, the job's settings and the clock, all before any connection; a ConfigError is
 * logged and becomes exit 2 (returned as a number). Then the logger, the Actions toolkit and the deadline.
 */
export async function configure(job: Job, options: RunOptions): Promise<Run | number> {
  const env: Env = options.env ?? process.env
  const argv = options.argv ?? process.argv.slice(2)
  const secrets = secretVariables.map((n) => env[n]).filter((v): v is string => !!v)
  let parsed: Pick<Run, 'config' | 'settings' | 'flags' | 'now' | 'slot'>
  try {
    const flags: Flags = parseFlags(argv, job.flags)
    const config = parseConfig(env)
    const now = clock(env)
    const settings = job.settings ? job.settings(createEnvReader(env), config, flags, now()) : undefined
    parsed = { config, settings, flags, now, slot: await resolveSlot(options.id, env, now()) }
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    createLogger({ scope: options.id, secrets, write: options.output }).error(`configuration error: ${err.message}`)
    return 2
  }
  const { config } = parsed
  const core = config.actions ? ((await import('@actions/core')) as Core) : undefined
  const runLog = createRunLog()
  const log = createLogger({
    scope: options.id,
    secrets: config.secrets,
    actions: core,
    debug: env.RUNNER_DEBUG === '1',
    write: options.output,
    tap: runLog.add,
  })
  const timeoutMs = toMs(job.timeout ?? '15m')
  let open: string | undefined
  return {
    ...parsed,
    id: options.id,
    job,
    env,
    dryRun: parsed.flags['dry-run'] === true || config.dryRun,
    trigger: detectTrigger(env, config),
    attempt: config.github.runAttempt,
    runUrl: runUrlOf(config),
    timeoutMs,
    log,
    core,
    mask: createMasker(config.secrets),
    deadline: createDeadline({ timeoutMs, log, exitNow: options.exitNow }),
    hooks: options.hooks ?? [],
    runLog,
    summary: createSummary(),
    // On Actions the log folds into a "setup" and a "run" group; the start and completion lines stay outside.
    group(name) {
      if (!core) return
      if (open) core.endGroup()
      open = name
      if (name) core.startGroup(name)
    },
    cleanups: [],
    applicationName: `admin-jobs:${options.id}:${process.pid}`,
  }
}

/**
 * Connect: the job's pool (the embedded server when DATABASE_URL is unset, migrated when behind) and the runner's
 * own small pool, which cancels the job's queries when the run is stopped. Undefined when the database cannot be
 * opened: the `connectFailed` hooks (the outage guard) have seen it.
 */
export async function connect(run: Run): Promise<ConnectedRun | undefined> {
  // With DATABASE_URL the runner's pool connects while the job's pool does (the embedded server's URL comes later).
  const known = configuredUrl(run.config)
  const early = known ? controlPool(run, known) : undefined
  let db: ConnectedRun['db']
  try {
    db = await openDatabase(run.config, {
      log: run.log,
      applicationName: run.applicationName,
      signal: run.deadline.signal,
    })
  } catch (err) {
    if (early) await abandon(early)
    run.group()
    const error = toError(err)
    run.log.error(`cannot open the database: ${run.mask(firstLine(error))}`, { error })
    if (!run.dryRun && !run.deadline.reason) await emit(run, 'connectFailed', error)
    return undefined
  }
  // A stopped run does not wait on a database that may not answer: its pools are dropped, not ended politely.
  run.cleanups.push(() => (run.deadline.reason ? abandon(db.sql).then(() => db.close()) : db.close()))
  const control = early ?? controlPool(run, db.url)
  run.cleanups.push(() => (run.deadline.reason ? abandon(control) : control.end({ timeout: 2 })))
  run.deadline.onStop(() => {
    void control`
      select pg_cancel_backend(pid) from pg_stat_activity
      where application_name = ${run.applicationName} and pid <> pg_backend_pid()`.catch(() => {})
  })
  return { ...run, db, control }
}

/**
 * The runner's own pool. Three connections: the lock's, the recording transaction's, and one for heartbeats and
 * cancels beside them. The first two open at once, concurrently: a run needs both before it starts (the lock holds
 * one), and opening them one after the other is most of a short run's set-up time.
 */
function controlPool(run: Run, url: string): ConnectedRun['control'] {
  const control = connectPool(url, {
    max: 3,
    applicationName: `admin-jobs-runner:${run.id}:${process.pid}`,
    statementTimeoutMs: 10_000,
  })
  // A failure here is the job's pool's failure too, and reported there; the queries that need the pool fail again.
  Promise.all([control`select 1`, control`select 1`]).catch(() => {})
  return control
}

/**
 * Lock and start: take the job's advisory lock (a second instance ends `skipped`), close runs of the job whose process
 * is gone, let the `beforeStart` hooks skip the run (pause, served slot), then insert the `running` row, start the
 * heartbeat and the timeout. Returns the started run, or the note of a skipped one.
 */
export async function start(run: ConnectedRun): Promise<StartedRun | { skipped: string }> {
  const { control, log } = run
  const record = {
    job: run.id,
    trigger: run.trigger,
    attempt: run.attempt,
    dryRun: run.dryRun,
    runUrl: run.runUrl,
    slot: run.slot,
  }
  const skip = async (note: string, stats?: Skip['stats']) => {
    const id = await recordSkipped(control, record, note, stats)
    run.group()
    log.info(`skipped: ${note}`)
    await run.runLog.flush(control, id).catch(() => {})
    await emit(run, 'skipped', note)
    return { skipped: note }
  }
  let lock: StartedRun['lock']
  if (run.job.lock !== false && !run.dryRun) {
    lock = await tryLockJob(control, run.id, { onLost: () => run.deadline.stop('lock_lost') })
    if (!lock) return skip('another run of this job holds its lock')
    const held = lock
    run.cleanups.push(() => held.release())
    const { closed, live } = await closeDeadRuns(control, run.id)
    if (closed.length) log.warn('closed runs left running by a process that died', { runs: closed.join(',') })
    const [other] = live
    if (other)
      return skip(
        `run ${other.id} of this job is still running without the lock (${other.host ?? '?'} pid ${other.pid ?? '?'}, heartbeat ${Math.round(other.heartbeatAgoMs / 1000)}s ago)`,
      )
  }
  const skipped = await skipOf(run)
  if (skipped) return skip(skipped.note, skipped.stats)
  if (run.deadline.reason) return { skipped: `stopped before it started (${run.deadline.reason})` }
  const runId = await startRun(control, record)
  run.deadline.start()
  // The log reaches history in batches: with every heartbeat, and a last time on release (before the pool closes).
  run.cleanups.push(() => run.runLog.flush(control, runId))
  const beat = setInterval(() => {
    heartbeat(control, runId).then(
      (alive) => alive || run.deadline.stop('fenced'),
      () => {},
    )
    run.runLog.flush(control, runId).catch(() => {})
  }, heartbeatEveryMs)
  beat.unref()
  run.cleanups.push(async () => clearInterval(beat))
  const started: StartedRun = { ...run, lock, runId, startedAt: new Date(), stopHeartbeat: () => clearInterval(beat) }
  await emit(started, 'started')
  return started
}
