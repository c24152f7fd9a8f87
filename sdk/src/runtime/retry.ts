import { type Duration, toMs } from '../text/duration.ts'
import { isTransient } from './errors.ts'

/** Retry policy; defaults: 3 attempts, 1s then doubling up to 30s, full jitter, only transient errors. */
export interface RetryOptions {
  attempts?: number
  minDelay?: Duration
  maxDelay?: Duration
  /** Which errors may be retried; default isTransient. */
  retryable?: (err: unknown) => boolean
  signal?: AbortSignal
  /** Called before each wait; `delayMs` is the wait about to start. */
  onRetry?: (info: { attempt: number; error: unknown; delayMs: number }) => void
  /** Do not start a wait that would end after this time (ms since epoch). */
  deadline?: number
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** The wait before retry number `attempt` (1-based): exponential with full jitter, capped. */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** (attempt - 1))
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}

/** Runs `fn` until it succeeds, the error is not retryable, attempts run out, or the deadline would pass. */
export async function retry<T>(options: RetryOptions, fn: (attempt: number) => Promise<T>): Promise<T> {
  const attempts = options.attempts ?? 3
  const minMs = toMs(options.minDelay ?? '1s')
  const maxMs = toMs(options.maxDelay ?? '30s')
  const retryable = options.retryable ?? isTransient
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt)
    } catch (error) {
      if (attempt >= attempts || !retryable(error) || options.signal?.aborted) throw error
      const delayMs = backoffDelay(attempt, minMs, maxMs)
      if (options.deadline !== undefined && Date.now() + delayMs >= options.deadline) throw error
      options.onRetry?.({ attempt, error, delayMs })
      await sleep(delayMs, options.signal)
    }
  }
}
