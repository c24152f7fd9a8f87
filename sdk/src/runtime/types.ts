import type { Sql, TransactionSql } from 'postgres'
import type { SlackMessage } from '../alerting/channels.ts'
import type { AlertInput, AlertResult, Check, Decision, Incidents } from '../alerting/incidents.ts'
import type { Config, EnvReader } from '../config/config.ts'
import type { Trigger } from '../records/runs.ts'
import type { Duration } from '../text/duration.ts'
import type { FlagSpecs } from './args.ts'
import type { Logger } from './log.ts'

/** Durable key/value state of one job (`jobs.job_state`), e.g. watermarks. */
export interface JobState {
  get<T = unknown>(key: string): Promise<T | undefined>
  /** Writes `value`; in `tx` when given, so a watermark moves with what it covers. Dry runs write nothing. */
  set(key: string, value: unknown, tx?: TransactionSql): Promise<void>
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
  /** True when ADMIN_JOBS_NOW pins the run's clock (`now()`): tests and replays of a past day. */
  readonly clockPinned: boolean
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
  /**
   * Raises an alert to the admins (ALERT_EMAIL_TO, Slack). With a dedupeKey it opens or continues that incident and
   * only its first alert goes out. Queued in `tx` when given, so it commits with the decision that made it.
   */
  readonly alert: (input: AlertInput, tx?: TransactionSql) => Promise<AlertResult>
  /** Ends an open incident with one recovery notice (nothing when it was never alerted). */
  readonly resolveAlert: (
    key: string,
    notice?: { title?: string; text?: string },
    tx?: TransactionSql,
  ) => Promise<AlertResult>
  /** Observes a check under the threshold policy: alert after N consecutive failures, remind, recover once. */
  readonly observe: (check: Check, tx?: TransactionSql) => Promise<Decision>
  /** The database's own incident (kept outside the database): what the health check feeds with its probe. */
  readonly observeDatabase: (probe: { ok: boolean; error?: string }) => Promise<Decision>
  /** Reads, lists and forgets incidents by key. */
  readonly incidents: Pick<Incidents, 'get' | 'open' | 'retire'>
  /**
   * Queues a message (a report, a notice, a digest) in `tx` when given; the runner delivers it after the job, per
   * channel, and a run that dies leaves it to the next. In a dry run only logs.
   */
  readonly notify: (message: Notice, tx?: TransactionSql) => Promise<NotifyResult>
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

/** A message a job sends through the outbox. */
export interface Notice {
  /** What it is (`report`, `expiry-notice`, `digest` …): kept with the message. */
  kind: string
  /** Makes queueing idempotent: a message with a key already queued is not queued again (retries, re-runs). */
  key?: string
  /** `admins` (default: ALERT_EMAIL_TO, and Slack when `slack` is given) or one address from data (email only). */
  to?: 'admins' | (string & {}) | null
  subject: string
  text: string
  html?: string
  /** The Slack post, for notices to the admins. */
  slack?: SlackMessage
  attachments?: readonly { filename: string; content: Buffer; contentType?: string; cid?: string }[]
}

/** What became of a notice: queued (with its message id), or refused because its recipient is not one address. */
export interface NotifyResult {
  queued: boolean
  id?: number
  refused?: string
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
  /**
   * Reads and validates the job's own settings once, before any connection (flags included: a bad flag value is exit
   * 2). `now` is the run's clock, for settings that depend on it (a period that has not ended yet).
   */
  settings?: (
    read: EnvReader,
    config: Config,
    flags: Readonly<Record<string, string | boolean | undefined>>,
    now: Date,
  ) => S
  run(context: JobContext<S>): Promise<JobStats | undefined | void>
}

/** A defined job, as defineJob returns it (frozen). */
export type Job<S = any> = Readonly<JobDefinition<S>>
