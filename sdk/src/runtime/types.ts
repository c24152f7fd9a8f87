import type { Sql } from 'postgres'
import type { Alerter } from '../alerting/alerts.ts'
import type { EmailMessage } from '../alerting/email.ts'
import type { SlackMessage } from '../alerting/slack.ts'
import type { Config, EnvReader } from '../config/config.ts'
import type { Trigger } from '../records/runs.ts'
import type { Duration } from '../text/duration.ts'
import type { FlagSpecs } from './args.ts'
import type { Logger } from './log.ts'

/** Durable key/value state of one job (`jobs.job_state`), e.g. watermarks. */
export interface JobState {
  get<T = unknown>(key: string): Promise<T | undefined>
  set(key: string, value: unknown): Promise<void>
}

/** Markdown collected for the run's job summary (written on GitHub Actions). */
export interface Summary {
  /** Appends raw markdown. */
  add(markdown: string): void
  /** Appends a markdown table; the first row is the header. */
  table(rows: readonly (readonly (string | number)[])[]): void
  readonly parts: readonly string[]
}

/** The run being executed. */
export interface RunInfo {
  readonly id: number
  readonly attempt: number
  readonly trigger: Trigger
  readonly url: string | undefined
  readonly startedAt: Date
  /** When the job's timeout fires (ms since epoch). */
  readonly deadline: number
}

/** The database a run works on, for jobs that need more than `sql` (pg_dump, a fresh probe connection). */
export interface DatabaseInfo {
  /** The postgres:// URL with its credentials: a secret, never to be printed (log lines mask it). */
  readonly url: string
  readonly host: string
  readonly port: string
  readonly name: string
  readonly user: string
  /** True for the embedded server of local runs. */
  readonly embedded: boolean
  /** A new pool on the same database with the project's defaults (default 1 connection); the caller ends it. */
  connect(options?: { max?: number; connectTimeoutMs?: number; applicationName?: string }): Sql
}

/** Everything a job may touch, already scoped to the job. */
export interface JobContext<S = undefined> {
  readonly job: string
  readonly sql: Sql
  readonly database: DatabaseInfo
  readonly log: Logger
  readonly alert: Alerter['alert']
  readonly resolveAlert: Alerter['resolve']
  /** Sends an email over SMTP_URL (to ALERT_EMAIL_TO unless `to` is given); in dry-run only logs. Throws on failure. */
  readonly mail: (message: EmailMessage) => Promise<void>
  /** Posts to SLACK_WEBHOOK_URL; in dry-run only logs. Throws on failure. */
  readonly slack: (message: SlackMessage) => Promise<void>
  /** Aborts on timeout, SIGINT or SIGTERM: check it between batches. */
  readonly signal: AbortSignal
  readonly dryRun: boolean
  readonly config: Config
  /** The job's own settings, from its `settings` function. */
  readonly settings: S
  /** Extra command-line flags the job declared (`--force`, `--period 2026-11`). */
  readonly flags: Readonly<Record<string, string | boolean | undefined>>
  readonly state: JobState
  readonly summary: Summary
  readonly run: RunInfo
  /** The current time (pinned by ADMIN_JOBS_NOW in tests); pass it to SQL instead of now() where periods matter. */
  readonly now: () => Date
}

/** Stats a job returns; they become the run's `stats` and its completion line. */
export type JobStats = object

/** What a job file exports: `export default defineJob({ ... })`. */
export interface JobDefinition<S = undefined> {
  description: string
  /** A failed or timed-out critical job alerts (default false). */
  critical?: boolean
  /** Hard limit for one run (default 15m); the signal aborts and in-flight queries are cancelled. */
  timeout?: Duration
  /**
   * Longest single statement on the job's connections (default: the job's timeout); the server cancels one that runs
   * longer (57014), and a connection silent that long plus a few seconds is taken for dead. Lower it for a job of
   * short statements so a database that stops answering is noticed sooner.
   */
  statementTimeout?: Duration
  /** In-process retries of transient errors (default 3 attempts, 1s doubling to 30s); false disables. */
  retry?: false | { attempts?: number; minDelay?: Duration; maxDelay?: Duration }
  /**
   * Why the job keeps running under `pnpm jobs pause all` (default: it pauses). A job exempt here pauses only when
   * named, e.g. backups that must go on during maintenance.
   */
  exemptFromPauseAll?: string
  /** The stats that tell what a run did, in order; `pnpm jobs history` shows these (default: the first few). */
  headline?: readonly string[]
  /** Take the job's advisory lock so runs never overlap (default true). */
  lock?: boolean
  /** Extra flags beyond --dry-run: `{ force: 'boolean', period: { type: 'string', description: 'YYYY-MM' } }`. */
  flags?: FlagSpecs
  /** Reads and validates the job's own settings once, before any connection (flags included: a bad flag value is exit 2). */
  settings?: (read: EnvReader, config: Config, flags: Readonly<Record<string, string | boolean | undefined>>) => S
  run(context: JobContext<S>): Promise<JobStats | undefined | void>
}

/** A defined job, as defineJob returns it (frozen). */
export type Job<S = any> = Readonly<JobDefinition<S>>
