import type { Sql } from 'postgres'
import type { Config, Env } from '../config/config.ts'
import type { Database } from '../database/client.ts'
import type { JobLock } from '../records/locks.ts'
import type { RunLog } from '../records/run-logs.ts'
import type { RunStatus, Trigger } from '../records/runs.ts'
import type { Deadline } from './deadline.ts'
import type { RunHook } from './hooks.ts'
import type { ActionsCore, Logger } from './log.ts'
import type { Job, Summary } from './types.ts'

/** The full @actions/core module, loaded only on Actions. */
export type Core = ActionsCore & typeof import('@actions/core')

/** Parsed command-line flags of a job (`--dry-run` plus the flags it declares). */
export type Flags = Readonly<Record<string, string | boolean | undefined>>

/** A configured run: what the configure phase read; every later phase adds to it. */
export interface Run {
  /** The job id (`cleanup/sessions`). */
  readonly id: string
  readonly job: Job
  readonly env: Env
  readonly config: Config
  readonly settings: unknown
  readonly flags: Flags
  readonly dryRun: boolean
  readonly trigger: Trigger
  readonly attempt: number
  readonly runUrl: string | undefined
  readonly timeoutMs: number
  readonly now: () => Date
  /** The schedule slot the run serves (docs/reference.md, "Schedules"), when the job has a schedule. */
  readonly slot: Date | undefined
  readonly log: Logger
  readonly core: Core | undefined
  readonly mask: (text: string) => string
  readonly deadline: Deadline
  readonly hooks: readonly RunHook[]
  /** The run's log lines, kept in history (`jobs.run_logs`). */
  readonly runLog: RunLog
  /** The markdown the job adds for its run summary. */
  readonly summary: Summary
  /** Runs the Actions log groups ("setup", "run"): `group()` closes the open one. */
  readonly group: (name?: string) => void
  /** Undo steps of the phases so far, run last-first by the release phase. */
  readonly cleanups: (() => Promise<unknown>)[]
  /** The name the job's pool connections carry (`application_name`), so a stop can cancel their queries. */
  readonly applicationName: string
}

/** A run with its database open: the job's pool and the runner's own small pool (`control`). */
export interface ConnectedRun extends Run {
  readonly db: Database
  readonly control: Sql
}

/** A run that holds its lock (when the job takes one) and has its `running` row in history. */
export interface StartedRun extends ConnectedRun {
  readonly lock: JobLock | undefined
  readonly runId: number
  readonly startedAt: Date
  /** Ends the heartbeat: once the outcome is being recorded the row is no longer `running`, which is not a fence. */
  readonly stopHeartbeat: () => void
}

/** How a run ended. `note` says why when the status alone does not (lost lock, closed by another run). */
export interface Outcome {
  readonly status: Exclude<RunStatus, 'running'>
  readonly stats: Readonly<Record<string, unknown>>
  readonly error: Error | undefined
  readonly note?: string
  readonly durationMs: number
}
