import type { Sql, TransactionSql } from 'postgres'
import { deliverDue } from '../alerting/outbox.ts'
import { withFreshConnection } from '../database/client.ts'
import { finishRun, recordedDuration, runStatus } from '../records/runs.ts'
import { formatMs } from '../text/duration.ts'
import { within } from './deadline.ts'
import { ConfigError, firstLine, toError } from './errors.ts'
import { exitCodes } from './exit-codes.ts'
import { emit } from './hooks.ts'
import type { Outcome, Run, StartedRun } from './run.ts'

/** How long recording an outcome may take on the runner's pool (3 s), then on a fresh connection (3 s). */
export const recordBudgetMs = 3_000

/** How long each undo step of the release phase may take (3 s). */
export const releaseBudgetMs = 3_000

/**
 * Record: the outcome in history and, in the same transaction, what the `recording` hooks must commit with it
 * (outcome alerts). Bounded: when the runner's pool does not answer in time, the bare outcome goes over a fresh
 * connection; when that fails too, the next run closes the row from its stale heartbeat. A row another run already
 * closed is never overwritten: the outcome becomes `failed`, saying so. Returns the outcome with history's duration.
 */
export async function record(run: StartedRun, outcome: Outcome): Promise<Outcome> {
  // A beat after this finds the row closed by this very run and would take it for a fence (and stop the delivery).
  run.stopHeartbeat()
  const fields = {
    status: outcome.status,
    stats: outcome.stats,
    error: outcome.error ? run.mask(errorWithCauses(outcome.error)) : undefined,
    note: outcome.note,
  }
  const withHooks = run.control.begin(async (tx) => {
    const done = await finishRun(tx, run.runId, fields)
    // The hooks (an alert's "duration" field) see the duration history records, not the runner's own clock.
    if (done) for (const hook of run.hooks) await recordingHook(run, hook, { ...outcome, ...done }, tx)
    return done ?? 'closed'
  })
  let result = await within(withHooks, recordBudgetMs, 'late' as const).catch((err: unknown) => toError(err))
  if (result === 'late' || result instanceof Error) {
    run.log.warn('recording the outcome on the runner pool failed; trying a fresh connection', {
      reason: result === 'late' ? `no answer within ${formatMs(recordBudgetMs)}` : run.mask(firstLine(result)),
    })
    const bare = async (fresh: Sql) => {
      const done = await finishRun(fresh, run.runId, fields)
      if (done) return done
      // The first attempt may have committed after all: then the row already holds this outcome.
      const status = await runStatus(fresh, run.runId)
      if (status !== fields.status) return 'closed' as const
      return { durationMs: (await recordedDuration(fresh, run.runId)) ?? outcome.durationMs }
    }
    result = await withFreshConnection(
      run.db.url,
      { deadlineMs: recordBudgetMs, applicationName: 'admin-jobs-record' },
      bare,
    ).catch((err: unknown) => toError(err))
  }
  if (result === 'closed') {
    const note = 'another run closed this one as dead while it was still running; its outcome was not recorded'
    run.log.error(note)
    return { ...outcome, status: 'failed', note, error: outcome.error ?? new Error(note) }
  }
  if (result === 'late' || result instanceof Error) {
    run.log.error('could not record the outcome; the next run of the job closes it from its stale heartbeat')
    return outcome
  }
  return typeof result === 'object' ? { ...outcome, durationMs: result.durationMs } : outcome
}

async function recordingHook(run: StartedRun, hook: Run['hooks'][number], outcome: Outcome, tx: TransactionSql) {
  if (!hook.recording) return
  try {
    // A savepoint each: a hook that fails must not take the recorded outcome down with it.
    await tx.savepoint((sp) => hook.recording!(run, outcome, sp))
  } catch (err) {
    run.log.warn(`${hook.name}: recording failed`, { reason: run.mask(firstLine(toError(err))) })
  }
}

/** How long the deliver phase may take (20 s); what it does not reach waits for the next run. */
export const deliverBudgetMs = 20_000

/**
 * Deliver: send what is queued and due, this run's messages and any others left by earlier runs, each channel on
 * its own and bounded. A stopped run delivers only within what is left of its stop bound (its failure alert, say);
 * what it cannot reach waits in the outbox for the next run. A run stopped while delivering hands back at once what
 * it had claimed, so the next run need not wait for the claims to expire. A dry run sends nothing.
 */
export async function deliver(run: StartedRun): Promise<void> {
  const budgetMs = Math.min(deliverBudgetMs, run.deadline.remainingStopMs() - 2_000)
  if (run.dryRun || budgetMs < 1_000) return
  try {
    const stopped = run.deadline.reason !== undefined
    const timeouts = stopped
      ? { connectMs: budgetMs, greetingMs: budgetMs, socketMs: budgetMs, slackMs: budgetMs }
      : undefined
    // A signal or the timeout while delivering (an Actions cancel) hands the messages back rather than leaving them
    // claimed; a lost lock does not matter here (deliveries are leased, not locked).
    const stopping = new AbortController()
    if (!stopped) run.deadline.onStop((reason) => reason !== 'lock_lost' && reason !== 'fenced' && stopping.abort())
    const report = await within(
      deliverDue(run.control, { config: run.config, log: run.log, budgetMs, timeouts, signal: stopping.signal }),
      budgetMs + 1_000,
      { sent: 0, retrying: 0, failed: 0, skipped: ['(out of time)'] },
    )
    if (report.sent + report.retrying + report.failed > 0)
      run.log.info('messages delivered', { ...report, skipped: report.skipped.join(',') || undefined })
  } catch (err) {
    run.log.warn('could not deliver queued messages; they wait for the next run', {
      reason: run.mask(firstLine(toError(err))),
    })
  }
}

/** Summarise: the completion line (duration and the job's stats), then the `finished` hooks (pings, job summary). */
export async function summarise(run: StartedRun, outcome: Outcome): Promise<void> {
  const line = `${outcome.status.replace('_', ' ')} in ${formatMs(outcome.durationMs)}${run.dryRun ? ' (dry run)' : ''}`
  if (outcome.status === 'succeeded') run.log.info(line, outcome.stats)
  else if (outcome.status === 'cancelled')
    run.log.warn(line, { reason: outcome.error ? firstLine(outcome.error) : undefined })
  else {
    const error = outcome.error ?? new Error(outcome.status)
    run.log.error(`${line}: ${run.mask(firstLine(error))}`, { error })
  }
  await emit(run, 'finished', outcome)
}

/** Release: every undo step of the phases, last first, each bounded so a frozen database cannot hold the exit. */
export async function release(run: Run): Promise<void> {
  run.group()
  run.deadline.dispose()
  for (const undo of run.cleanups.splice(0).reverse()) {
    await within(
      undo().catch(() => {}),
      releaseBudgetMs,
      undefined,
    )
  }
}

/** The process exit code of an outcome (docs/reference.md, "Exit codes"). */
export function exitCodeOf(run: Run, outcome: Outcome): number {
  if (outcome.status === 'succeeded' || outcome.status === 'skipped') return exitCodes.succeeded
  if (outcome.status === 'timed_out') return exitCodes.timed_out
  if (outcome.status === 'cancelled') return run.deadline.reason === 'SIGINT' ? exitCodes.SIGINT : exitCodes.SIGTERM
  // A setting found wrong only once the job looked (e.g. pg_dump missing) is still a configuration error.
  return outcome.error instanceof ConfigError ? exitCodes.config : exitCodes.failed
}

/** An error's stack followed by its causes' (`Caused by: …`), at most five deep, as stored in `jobs.runs.error`. */
export function errorWithCauses(error: Error): string {
  const parts = [error.stack ?? error.message]
  let cause = error.cause
  for (let depth = 0; cause !== undefined && cause !== null && depth < 5; depth++) {
    const e = toError(cause)
    parts.push(`Caused by: ${e.stack ?? e.message}`)
    cause = e.cause
  }
  return parts.join('\n')
}
