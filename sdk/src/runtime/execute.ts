import { formatMs } from '../text/duration.ts'
import { buildContext } from './context.ts'
import { untilStopped } from './deadline.ts'
import { AbortedError, firstLine, toError } from './errors.ts'
import { retry } from './retry.ts'
import type { Outcome, StartedRun } from './run.ts'

/** Statuses a stop reason gives the run. */
const stoppedStatus = {
  timed_out: 'timed_out',
  SIGINT: 'cancelled',
  SIGTERM: 'cancelled',
  lock_lost: 'failed',
  fenced: 'failed',
} as const

/**
 * Execute under the deadline: the job's `run` with its context, retried on transient errors within the timeout, each
 * attempt only while the run still holds its lock. A stopped run waits at most the stop grace for the job to reach a
 * safe point. Returns the outcome; `durationMs` is measured again from history when it is recorded.
 */
export async function execute(run: StartedRun): Promise<Outcome> {
  const { deadline, log } = run
  run.group(`run ${run.id}`)
  const context = buildContext(run)
  const policy = run.job.retry === false ? { attempts: 1 } : (run.job.retry ?? {})
  let stats: unknown
  let error: Error | undefined
  try {
    const attempts = retry(
      {
        ...policy,
        signal: deadline.signal,
        deadline: deadline.at,
        onRetry: ({ attempt, error, delayMs }) =>
          log.warn(`attempt ${attempt} failed with a transient error; retrying in ${formatMs(delayMs)}`, {
            reason: run.mask(firstLine(toError(error))),
          }),
      },
      async (attempt) => {
        deadline.signal.throwIfAborted()
        if (attempt > 1) log.info(`attempt ${attempt}`)
        return run.job.run(context as never)
      },
    )
    stats = await untilStopped(attempts, deadline.signal)
  } catch (err) {
    error = toError(err)
  }
  run.group()
  const durationMs = Date.now() - run.startedAt.getTime()
  const fields = stats && typeof stats === 'object' ? (stats as Record<string, unknown>) : {}
  const reason = deadline.reason
  if (reason) {
    // Record why the run stopped ("timed out after 1.0s"), not the symptom the job saw (a cancelled query).
    const why = deadline.signal.reason as Error
    const stopped = error && error !== why ? new AbortedError(why.message, { cause: error }) : why
    const note = reason === 'lock_lost' || reason === 'fenced' ? why.message : undefined
    return { status: stoppedStatus[reason], stats: fields, error: stopped, note, durationMs }
  }
  return { status: error ? 'failed' : 'succeeded', stats: fields, error, durationMs }
}
