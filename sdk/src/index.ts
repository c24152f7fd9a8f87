// The job-facing API: what a script under scripts/ imports. It loads only small modules; the runtime that runs a job
// (database, channels, Actions) is loaded when a job script is the process's entry.
export type { SlackMessage } from './alerting/channels.ts'
export type { AlertInput, AlertResult, Check, Decision } from './alerting/incidents.ts'
export { singleAddress, whyNotAnAddress } from './alerting/recipients.ts'
export type { AlertFields, Severity } from './alerting/templates.ts'
export type { Config, Env, EnvReader } from './config/config.ts'
export { redactUrl } from './config/redact.ts'
export { type AtomicFile, atomicFile, isAtomicTemp, writeFileAtomic } from './files/atomic.ts'
export { createHashingStream, type HashingStream, sha256, sha256File, sha256sumLine } from './files/checksum.ts'
export { type FileLockOptions, withFileLock } from './files/lock.ts'
export { median, percentile } from './numbers/percentiles.ts'
export { defineJob, isJob } from './runtime/define.ts'
export { AbortedError, ConfigError, firstLine, isTransient, NonRetryableError, toError } from './runtime/errors.ts'
export { exitCodes } from './runtime/exit-codes.ts'
export type { Logger } from './runtime/log.ts'
export { backoffDelay, retry, sleep } from './runtime/retry.ts'
export type {
  DatabaseInfo,
  Job,
  JobContext,
  JobDefinition,
  JobState,
  JobStats,
  Notice,
  NotifyResult,
  RunInfo,
  Summary,
} from './runtime/types.ts'
export { type Duration, type DurationUnit, formatMs, parseDuration, toMs } from './text/duration.ts'
export { escapeHtml } from './text/escape.ts'
export { type MarkdownCell, markdownTable } from './text/markdown.ts'
