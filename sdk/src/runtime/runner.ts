import fs from 'node:fs/promises'
import type { Sql } from 'postgres'
import { createAlerter } from '../alerting/alerts.ts'
import { observeDatabase } from '../alerting/database-outage.ts'
import { sendEmail } from '../alerting/email.ts'
import { pingHeartbeat } from '../alerting/heartbeat.ts'
import { sendSlack } from '../alerting/slack.ts'
import { type Config, createEnvReader, type Env, parseConfig, secretVariables } from '../config/config.ts'
import { createMasker } from '../config/redact.ts'
import { connect, type Database, openDatabase } from '../database/client.ts'
import { type JobLock, tryLockJob } from '../records/locks.ts'
import { findPause, pauseNote } from '../records/pauses.ts'
import {
  closeDeadRuns,
  finishRun,
  heartbeat,
  type RunStatus,
  recordSkipped,
  startRun,
  type Trigger,
} from '../records/runs.ts'
import { formatMs, toMs } from '../text/duration.ts'
import { AbortedError, ConfigError, firstLine, toError } from './errors.ts'
import { exitCodes } from './exit-codes.ts'
import { type ActionsCore, createLogger, type Logger } from './log.ts'
import { retry } from './retry.ts'
import { renderRunSummary } from './summary.ts'
import type { Job, JobContext, JobDefinition, JobState, Summary } from './types.ts'

/** How long a job may take to stop after its signal aborted, before the runner gives up on it. */
const stopGraceMs = 10_000

/** Parses `--dry-run` and the job's declared flags; anything else is a usage error (exit 2). */
export function parseFlags(
  argv: readonly string[],
  declared: JobDefinition['flags'] = {},
): Record<string, string | boolean | undefined> {
  const spec: Record<string, 'boolean' | 'string'> = { 'dry-run': 'boolean', ...declared }
  const flags: Record<string, string | boolean | undefined> = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const match = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(arg)
    if (!match)
      throw new ConfigError(
        `unexpected argument "${arg}" (flags: ${Object.keys(spec)
          .map((f) => `--${f}`)
          .join(', ')})`,
      )
    const [, name, inline] = match as unknown as [string, string, string | undefined]
    const kind = spec[name]
    if (!kind)
      throw new ConfigError(
        `unknown flag --${name} (flags: ${Object.keys(spec)
          .map((f) => `--${f}`)
          .join(', ')})`,
      )
    if (kind === 'boolean') {
      if (inline !== undefined && !['true', 'false'].includes(inline)) throw new ConfigError(`--${name} takes no value`)
      flags[name] = inline !== 'false'
    } else {
      const value = inline ?? argv[++i]
      if (value === undefined || value.startsWith('--')) throw new ConfigError(`--${name} needs a value`)
      flags[name] = value
    }
  }
  return flags
}

/** What started this run, from the Actions environment (or ADMIN_JOBS_TRIGGER, or `local`). */
export function detectTrigger(env: Env, config: Config): Trigger {
  if (env.ADMIN_JOBS_TRIGGER) return env.ADMIN_JOBS_TRIGGER
  if (!config.actions) return 'local'
  if (config.github.runAttempt > 1) return 'rerun'
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
}

/** Runs one job end to end (config, database, lock, history, retries, timeout, signals, alerts) and returns its exit code. */
export async function runJob(job: Job, options: RunOptions): Promise<number> {
  const env = options.env ?? process.env
  const argv = options.argv ?? process.argv.slice(2)
  const id = options.id
  const bootLog = createLogger({
    scope: id,
    secrets: secretVariables.map((n) => env[n]).filter((v): v is string => !!v),
  })

  let config: Config
  let settings: unknown
  let flags: Record<string, string | boolean | undefined>
  let now: () => Date
  try {
    flags = parseFlags(argv, job.flags)
    config = parseConfig(env)
    settings = job.settings ? job.settings(createEnvReader(env), config, flags) : undefined
    now = clock(env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    bootLog.error(`configuration error: ${err.message}`)
    return exitCodes.config
  }
  const dryRun = flags['dry-run'] === true || config.dryRun
  const core = config.actions
    ? ((await import('@actions/core')) as ActionsCore & typeof import('@actions/core'))
    : undefined
  const log = createLogger({ scope: id, secrets: config.secrets, actions: core, debug: env.RUNNER_DEBUG === '1' })
  const timeoutMs = toMs(job.timeout ?? '15m')
  const trigger = detectTrigger(env, config)
  const runUrl = runUrlOf(config)
  const startedAt = new Date()
  let deadline = startedAt.getTime() + timeoutMs
  const mask = createMasker(config.secrets)

  const controller = new AbortController()
  let stopReason: 'timed_out' | 'SIGINT' | 'SIGTERM' | undefined
  let cancelQueries: () => Promise<void> = async () => {}
  const stop = (reason: 'timed_out' | 'SIGINT' | 'SIGTERM') => {
    if (stopReason) {
      if (reason !== 'timed_out') {
        log.warn(`second ${reason}: exiting now`)
        process.exit(exitCodes[reason])
      }
      return
    }
    stopReason = reason
    const message = reason === 'timed_out' ? `timed out after ${formatMs(timeoutMs)}` : `interrupted by ${reason}`
    log.warn(`${message}: stopping at the next safe point`)
    controller.abort(new AbortedError(message))
    void cancelQueries().catch(() => {})
  }
  const onSigint = () => stop('SIGINT')
  const onSigterm = () => stop('SIGTERM')
  process.on('SIGINT', onSigint)
  process.on('SIGTERM', onSigterm)
  // The timeout starts with the job itself: starting an embedded server or waiting for a migration must not eat it.
  let timer: NodeJS.Timeout | undefined

  const interruptedCode = () => (stopReason && stopReason !== 'timed_out' ? exitCodes[stopReason] : undefined)
  const applicationName = `admin-jobs:${id}:${process.pid}`
  let db: Database | undefined
  let control: Sql | undefined
  let lock: JobLock | undefined
  let runId: number | undefined
  let beat: NodeJS.Timeout | undefined
  // On Actions the log folds into two groups, "setup" and "run"; the start and completion lines stay outside.
  let group: string | undefined
  const enterGroup = (name?: string) => {
    if (!core) return
    if (group) core.endGroup()
    group = name
    if (name) core.startGroup(name)
  }
  try {
    log.info(`starting${dryRun ? ' (dry run)' : ''}`, { trigger, attempt: config.github.runAttempt })
    enterGroup('setup: database, migrations, lock')
    try {
      db = await openDatabase(config, { log, applicationName, signal: controller.signal })
    } catch (err) {
      enterGroup()
      log.error(`cannot open the database: ${mask(firstLine(toError(err)))}`, { error: toError(err) })
      // Storm guard (issue 6): every job feeds one shared "database unreachable" incident, kept in a file.
      if (!dryRun && !stopReason) {
        const error = firstLine(toError(err))
        await observeDatabase({ config, log, ok: false, error, now: now(), job: id, runUrl }).catch((e) =>
          log.warn('could not record the database outage', { reason: firstLine(toError(e)) }),
        )
      }
      return interruptedCode() ?? exitCodes.failed
    }
    control = connect(db.url, { max: 2, applicationName: `admin-jobs-runner:${id}:${process.pid}` })
    const controlSql = control
    cancelQueries = async () => {
      await controlSql`
        select pg_cancel_backend(pid) from pg_stat_activity
        where application_name = ${applicationName} and pid <> pg_backend_pid()`
    }
    const start = { job: id, trigger, attempt: config.github.runAttempt, dryRun, runUrl }
    if (job.lock !== false && !dryRun) {
      lock = await tryLockJob(control, id)
      if (!lock) {
        await recordSkipped(control, start, 'another run of this job holds its lock')
        enterGroup()
        log.info('skipped: another run of this job is in progress')
        await writeSummary(core, renderRunSummary({ job: id, status: 'skipped', durationMs: 0, dryRun, runUrl }))
        return exitCodes.skipped
      }
      const closed = await closeDeadRuns(control, id)
      if (closed.length) log.warn('closed runs left running by a process that died', { runs: closed.join(',') })
    }
    // --- maintenance mode (issue 9, sdk/src/pause.ts): a paused job records `skipped` with the reason, exits 0 ---
    const pause = await findPause(control, id)
    if (pause) {
      const note = pauseNote(pause)
      await recordSkipped(control, start, note)
      enterGroup()
      log.info(`skipped: ${note}`)
      await pingHeartbeat(dryRun ? undefined : config.heartbeatUrl, id, 'success', log, `skipped: ${note}`)
      await writeSummary(core, renderRunSummary({ job: id, status: 'skipped', durationMs: 0, dryRun, runUrl }))
      return exitCodes.skipped
    }
    // --- end maintenance mode ---
    if (stopReason) return interruptedCode() ?? exitCodes.failed
    runId = await startRun(control, start)
    deadline = Date.now() + timeoutMs
    timer = setTimeout(() => stop('timed_out'), timeoutMs)
    const currentRunId = runId
    beat = setInterval(() => void heartbeat(controlSql, currentRunId).catch(() => {}), 15_000)
    beat.unref()
    // Heartbeat pings (issue 9) are awaited before the runner returns, so process.exit cannot cut them off.
    const startPing = pingHeartbeat(dryRun ? undefined : config.heartbeatUrl, id, 'start', log)

    enterGroup(`run ${id}`)
    const summary = createSummary()
    const alerter = createAlerter({ sql: control, config, log, job: id, runUrl, dryRun })
    const context: JobContext<unknown> = {
      job: id,
      sql: db.sql,
      log,
      alert: alerter.alert,
      resolveAlert: alerter.resolve,
      mail: async (message) => {
        if (dryRun) return log.info('dry run: would send email', { subject: message.subject })
        await sendEmail(config, message)
      },
      slack: async (message) => {
        if (dryRun) return log.info('dry run: would post to Slack', { text: message.text.slice(0, 80) })
        await sendSlack(config, message)
      },
      signal: controller.signal,
      dryRun,
      config,
      settings,
      flags,
      state: createState(db.sql, id, dryRun),
      summary,
      run: { id: runId, attempt: config.github.runAttempt, trigger, url: runUrl, startedAt, deadline },
      now,
    }

    let status: Exclude<RunStatus, 'running' | 'skipped'> = 'succeeded'
    let stats: unknown
    let error: Error | undefined
    const retryPolicy = job.retry === false ? { attempts: 1 } : (job.retry ?? {})
    const running = retry(
      {
        ...retryPolicy,
        signal: controller.signal,
        deadline,
        onRetry: ({ attempt, error, delayMs }) =>
          log.warn(`attempt ${attempt} failed with a transient error; retrying in ${formatMs(delayMs)}`, {
            reason: mask(firstLine(toError(error))),
          }),
      },
      async (attempt) => {
        if (attempt > 1) log.info(`attempt ${attempt}`)
        return job.run(context as JobContext<any>)
      },
    )
    try {
      stats = await untilStopped(running, controller.signal)
    } catch (err) {
      error = toError(err)
    }
    enterGroup()
    if (stopReason) {
      status = stopReason === 'timed_out' ? 'timed_out' : 'cancelled'
      // Record why the run stopped first ("timed out after 1.0s"), not the symptom the job saw (a cancelled query).
      const reason = controller.signal.reason as Error
      error = error && error !== reason ? new AbortedError(reason.message, { cause: error }) : reason
    } else if (error) {
      status = 'failed'
    }
    const durationMs = Date.now() - startedAt.getTime()
    const errorText = error ? mask(errorWithCauses(error)) : undefined
    await finishRun(control, runId, { status, stats: stats ?? {}, error: errorText })
    clearInterval(beat)

    const statsFields = stats && typeof stats === 'object' ? (stats as Record<string, unknown>) : {}
    const line = `${status.replace('_', ' ')} in ${formatMs(durationMs)}${dryRun ? ' (dry run)' : ''}`
    if (status === 'succeeded') log.info(line, statsFields)
    else if (status === 'cancelled') log.warn(line, { reason: error ? firstLine(error) : undefined })
    else log.error(`${line}: ${mask(firstLine(error!))}`, { error: error! })

    if (!dryRun) await notifyOutcome({ job, id, status, error, alerter, log, durationMs })
    await startPing
    await pingHeartbeat(
      dryRun ? undefined : config.heartbeatUrl,
      id,
      status === 'succeeded' ? 'success' : 'fail',
      log,
      errorText,
    )
    // The summary is a file, not a log line: Actions' masking does not reach it, so mask it here.
    await writeSummary(
      core,
      mask(
        renderRunSummary({
          job: id,
          status,
          durationMs,
          dryRun,
          runUrl,
          stats: statsFields,
          error,
          parts: summary.parts,
        }),
      ),
    )
    if (core && typeof core.setOutput === 'function') {
      core.setOutput('status', status)
      core.setOutput('stats', JSON.stringify(statsFields))
    }
    if (status === 'succeeded') return exitCodes.succeeded
    if (status === 'timed_out') return exitCodes.timed_out
    if (status === 'cancelled') return interruptedCode() ?? exitCodes.SIGTERM
    // A setting found wrong only once the job looked (e.g. pg_dump missing) is still a configuration error.
    return error instanceof ConfigError ? exitCodes.config : exitCodes.failed
  } catch (err) {
    // The runner's own bookkeeping failed (history, lock, connection lost): record what we can and fail.
    const error = toError(err)
    enterGroup()
    log.error(`runner error: ${mask(firstLine(error))}`, { error })
    if (runId !== undefined && control) {
      await finishRun(control, runId, { status: 'failed', error: mask(error.stack ?? error.message) }).catch(() => {})
    }
    return interruptedCode() ?? exitCodes.failed
  } finally {
    enterGroup()
    clearTimeout(timer)
    clearInterval(beat)
    process.off('SIGINT', onSigint)
    process.off('SIGTERM', onSigterm)
    await lock?.release().catch(() => {})
    await control?.end({ timeout: 5 }).catch(() => {})
    await db?.close()
  }
}

/** Waits for the run; after the signal aborts, waits at most stopGraceMs more for it to reach a safe point. */
async function untilStopped<T>(running: Promise<T>, signal: AbortSignal): Promise<T> {
  running.catch(() => {})
  const aborted = new Promise<never>((_, reject) => {
    const onAbort = () => setTimeout(() => reject(signal.reason), stopGraceMs).unref()
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
  return Promise.race([running, aborted])
}

async function notifyOutcome(options: {
  job: Job
  id: string
  status: RunStatus
  error: Error | undefined
  alerter: ReturnType<typeof createAlerter>
  log: Logger
  durationMs: number
}): Promise<void> {
  const { job, id, status, error, alerter, log } = options
  const dedupeKey = `job:${id}`
  try {
    if (status === 'succeeded') {
      await alerter.resolve(dedupeKey, { title: `${id} recovered`, text: `${id} succeeded again.` })
    } else if (job.critical && (status === 'failed' || status === 'timed_out')) {
      await alerter.alert({
        severity: 'critical',
        title: `${id} ${status === 'failed' ? 'failed' : 'timed out'}`,
        text: error ? firstLine(error) : status,
        fields: { job: id, outcome: status, duration: formatMs(options.durationMs) },
        dedupeKey,
      })
    }
  } catch (err) {
    // Alerting is best effort: its failure is logged and never changes the job's outcome.
    log.warn('could not process alerts', { reason: firstLine(toError(err)) })
  }
}

async function writeSummary(core: (ActionsCore & typeof import('@actions/core')) | undefined, markdown: string) {
  if (!core || !process.env.GITHUB_STEP_SUMMARY) return
  await fs.appendFile(process.env.GITHUB_STEP_SUMMARY, `${markdown}\n`).catch(() => {})
}

function createSummary(): Summary {
  const parts: string[] = []
  return {
    parts,
    add: (markdown) => void parts.push(markdown),
    table(rows) {
      const [head, ...body] = rows
      if (!head) return
      const cell = (v: string | number) => String(v).replace(/\|/g, '\\|').replace(/\n/g, ' ')
      parts.push(
        [
          `| ${head.map(cell).join(' | ')} |`,
          `| ${head.map(() => '---').join(' | ')} |`,
          ...body.map((r) => `| ${r.map(cell).join(' | ')} |`),
        ].join('\n'),
      )
    },
  }
}

function createState(sql: Sql, job: string, dryRun: boolean): JobState {
  return {
    async get<T>(key: string) {
      const [row] = await sql<{ value: T }[]>`select value from jobs.job_state where job = ${job} and key = ${key}`
      return row?.value
    },
    async set(key, value) {
      // A dry run must not move watermarks or other state.
      if (dryRun) return
      await sql`
        insert into jobs.job_state (job, key, value) values (${job}, ${key}, ${sql.json(value as never)})
        on conflict (job, key) do update set value = excluded.value, updated_at = now()`
    },
  }
}

function clock(env: Env): () => Date {
  const pinned = env.ADMIN_JOBS_NOW
  if (!pinned) return () => new Date()
  const at = new Date(pinned)
  if (Number.isNaN(at.getTime()))
    throw new ConfigError(`ADMIN_JOBS_NOW is not a timestamp (got "${pinned}")`, { variable: 'ADMIN_JOBS_NOW' })
  return () => new Date(at)
}

/** An error's stack followed by its causes' (`Caused by: …`), at most five deep, as stored in `jobs.runs.error`. */
function errorWithCauses(error: Error): string {
  const parts = [error.stack ?? error.message]
  let cause = error.cause
  for (let depth = 0; cause !== undefined && cause !== null && depth < 5; depth++) {
    const e = toError(cause)
    parts.push(`Caused by: ${e.stack ?? e.message}`)
    cause = e.cause
  }
  return parts.join('\n')
}
