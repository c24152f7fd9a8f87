import { formatMs } from '../text/duration.ts'
import { AbortedError } from './errors.ts'
import type { Logger } from './log.ts'

/** Why a run was stopped before its job returned. */
export type StopReason = 'timed_out' | 'SIGINT' | 'SIGTERM' | 'lock_lost' | 'fenced'

/** How long a job may take to reach a safe point after its signal aborted (10 s). */
export const stopGraceMs = 10_000

/** Bound on the whole stop: from the signal or timeout to the process's exit, whatever hangs (15 s). */
export const hardStopMs = 15_000

/** A run's timeout, signal handlers and stop state; `signal` is the job's AbortSignal. */
export interface Deadline {
  readonly signal: AbortSignal
  /** Why the run was stopped, once it was. */
  readonly reason: StopReason | undefined
  /** When the job's timeout fires (ms since epoch); Infinity until `start`. */
  readonly at: number
  /** The time left before a stopped run must have exited (hardStopMs after the stop); Infinity while not stopped. */
  remainingStopMs(): number
  /** Starts the timeout clock (when the job itself starts: set-up time does not count). */
  start(): void
  /** Stops the run for `reason` with `message` (the first stop wins). */
  stop(reason: StopReason, message?: string): void
  /** Calls `fn` when the run is stopped (at once if it already was). */
  onStop(fn: (reason: StopReason) => void): void
  /** Removes the timer and the signal handlers. */
  dispose(): void
}

/**
 * Options of createDeadline. `exitNow` ends the process: on a second SIGINT/SIGTERM, and `hardStopMs` after the
 * first stop whatever still hangs (default: neither; tests run jobs in-process).
 */
export interface DeadlineOptions {
  timeoutMs: number
  log: Logger
  exitNow?: (reason: StopReason) => void
}

/** Creates the deadline and listens for SIGINT/SIGTERM until `dispose`. */
export function createDeadline(options: DeadlineOptions): Deadline {
  const controller = new AbortController()
  const listeners: ((reason: StopReason) => void)[] = []
  let reason: StopReason | undefined
  let timer: NodeJS.Timeout | undefined
  let at = Number.POSITIVE_INFINITY
  let stoppedAt: number | undefined

  const stop = (why: StopReason, message = describeStop(why, options.timeoutMs)) => {
    if (reason) {
      if (why === 'SIGINT' || why === 'SIGTERM') {
        options.log.warn(`second ${why}: exiting now`)
        options.exitNow?.(why)
      }
      return
    }
    reason = why
    stoppedAt = Date.now()
    options.log.warn(`${message}: stopping at the next safe point`)
    if (options.exitNow) {
      const exitNow = options.exitNow
      setTimeout(() => {
        options.log.error(`still not stopped ${hardStopMs / 1000}s after the stop: exiting now`)
        exitNow(why)
      }, hardStopMs).unref()
    }
    controller.abort(new AbortedError(message))
    for (const fn of listeners) fn(why)
  }
  const onSigint = () => stop('SIGINT')
  const onSigterm = () => stop('SIGTERM')
  process.on('SIGINT', onSigint)
  process.on('SIGTERM', onSigterm)

  return {
    signal: controller.signal,
    get reason() {
      return reason
    },
    get at() {
      return at
    },
    remainingStopMs: () => (stoppedAt === undefined ? Number.POSITIVE_INFINITY : stoppedAt + hardStopMs - Date.now()),
    start() {
      at = Date.now() + options.timeoutMs
      timer = setTimeout(() => stop('timed_out'), options.timeoutMs)
    },
    stop,
    onStop(fn) {
      if (reason) fn(reason)
      else listeners.push(fn)
    },
    dispose() {
      clearTimeout(timer)
      process.off('SIGINT', onSigint)
      process.off('SIGTERM', onSigterm)
    },
  }
}

function describeStop(reason: StopReason, timeoutMs: number): string {
  if (reason === 'timed_out') return `timed out after ${formatMs(timeoutMs)}`
  if (reason === 'lock_lost') return "lost the job's lock (its database connection dropped)"
  if (reason === 'fenced') return 'this run was closed by another run of the job'
  return `interrupted by ${reason}`
}

/**
 * Waits for `work`, but at most `ms` once `signal` has aborted: a job that ignores its signal cannot hold the run
 * past its grace. Rejects with the signal's reason then.
 */
export async function untilStopped<T>(work: Promise<T>, signal: AbortSignal, ms = stopGraceMs): Promise<T> {
  work.catch(() => {})
  let timer: NodeJS.Timeout | undefined
  const onAbort = (reject: (e: unknown) => void) => () => {
    timer = setTimeout(() => reject(signal.reason), ms)
    timer.unref()
  }
  let listener: (() => void) | undefined
  const aborted = new Promise<never>((_, reject) => {
    listener = onAbort(reject)
    if (signal.aborted) listener()
    else signal.addEventListener('abort', listener, { once: true })
  })
  try {
    return await Promise.race([work, aborted])
  } finally {
    clearTimeout(timer)
    if (listener) signal.removeEventListener('abort', listener)
  }
}

/** Resolves with `work`'s value, or with `fallback` once `ms` passed (the work goes on unobserved). */
export async function within<T, F>(work: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  work.catch(() => {})
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms)
    timer.unref()
  })
  try {
    return await Promise.race([work, late])
  } finally {
    clearTimeout(timer)
  }
}
