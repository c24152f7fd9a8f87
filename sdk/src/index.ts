export {
  type AlertPolicy,
  createAlertPolicy,
  decide,
  defaultRule,
  type PolicyAction,
  type PolicyCheck,
  type PolicyDecision,
  type PolicyRule,
  type PolicyState,
  type PolicyStore,
} from './alert-policy.ts'
export { type Alerter, type AlertInput, type AlertResult, createAlerter, type Severity } from './alerts.ts'
export { type ArchiveOptions, type ArchiveResult, archiveAuditLogs } from './archive.ts'
export {
  checksumFile,
  type MonthFile,
  manifestFile,
  monthFileName,
  sha256File,
  verifyArchiveDir,
  writeMonthFile,
} from './archive-files.ts'
export { type Config, createEnvReader, type Env, type EnvReader, parseConfig } from './config.ts'
export type { Job, JobContext, JobDefinition, JobState, JobStats, RunInfo, Summary } from './context.ts'
export { databaseKey, observeDatabase } from './database-outage.ts'
export { connect, type Database, openDatabase } from './db.ts'
export { type Duration, formatMs, toMs } from './duration.ts'
export { type EmailMessage, sendEmail } from './email.ts'
export { AbortedError, ConfigError, isTransient, NonRetryableError, toError } from './errors.ts'
export { listRuns, type RunRecord, type RunStatus } from './history.ts'
export { createLogger, type Logger } from './log.ts'
export { migrate } from './migrate.ts'
export { createFilePolicyStore, createSqlPolicyStore } from './policy-store.ts'
export { type ProbeResult, percentile, probeAll, probeUrl } from './probes.ts'
export { type PurgeOptions, type PurgeResult, purgeInBatches } from './purge.ts'
export { redactUrl } from './redact.ts'
export {
  assertWithinLimit,
  estimateRemoval,
  parseFraction,
  type RemovalRange,
  readMaxFraction,
  removableWhere,
} from './removal-plan.ts'
export { backoffDelay, retry, sleep } from './retry.ts'
export { defineJob, exitCodes, runJob } from './runner.ts'
export { type SlackMessage, sendSlack } from './slack.ts'
