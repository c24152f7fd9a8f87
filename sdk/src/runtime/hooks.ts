import type { TransactionSql } from 'postgres'
import type { ConnectedRun, Outcome, Run, StartedRun } from './run.ts'

/**
 * A feature plugged into the run's phases (pause, heartbeat pings, the outage guard, outcome alerts, the Actions
 * summary). Each method is optional; the runner calls hooks in order, and a hook's failure is logged, never fatal,
 * except `beforeStart`, whose error fails the run like any set-up error.
 */
export interface RunHook {
  readonly name: string
  /** The database could not be opened; the run ends failed after every hook saw it. */
  connectFailed?(run: Run, error: Error): Promise<void>
  /** Connected and locked, before the `running` row: return a note to end the run `skipped` (a pause, a served slot). */
  beforeStart?(run: ConnectedRun): Promise<Skip | string | undefined>
  /** The run was recorded as skipped with `note`. */
  skipped?(run: ConnectedRun, note: string): Promise<void>
  /** The `running` row exists and the job is about to run. */
  started?(run: StartedRun): Promise<void>
  /** Inside the transaction that records the outcome: what must commit with it (outcome alerts). */
  recording?(run: StartedRun, outcome: Outcome, tx: TransactionSql): Promise<void>
  /** The outcome is recorded and delivered: last words (pings, the job summary). */
  finished?(run: StartedRun, outcome: Outcome): Promise<void>
}

type Event = 'connectFailed' | 'skipped' | 'started' | 'finished'

/** Calls `event` on every hook in order; a failing hook is logged and the rest still run. */
export async function emit<E extends Event>(
  run: Run,
  event: E,
  ...args: Parameters<NonNullable<RunHook[E]>> extends [any, ...infer Rest] ? Rest : never
): Promise<void> {
  for (const hook of run.hooks) {
    const fn = hook[event] as ((r: Run, ...a: unknown[]) => Promise<void>) | undefined
    if (!fn) continue
    try {
      await fn.call(hook, run, ...args)
    } catch (err) {
      run.log.warn(`${hook.name}: ${event} failed`, { reason: (err as Error).message })
    }
  }
}

/** Why a run ends `skipped` before it starts: the note, and what goes into its stats beside `reason`. */
export interface Skip {
  note: string
  stats?: Record<string, unknown>
}

/** The first skip a `beforeStart` hook returns, or undefined when every hook lets the run start. */
export async function skipOf(run: ConnectedRun): Promise<Skip | undefined> {
  for (const hook of run.hooks) {
    const skip = await hook.beforeStart?.(run)
    if (skip) return typeof skip === 'string' ? { note: skip } : skip
  }
  return undefined
}
