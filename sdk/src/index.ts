export { type ArchiveOptions, type ArchiveResult, archiveAuditLogs } from '../../scripts/cleanup/lib/archive.ts'
export {
  checksumFile,
  type MonthFile,
  manifestFile,
  monthFileName,
  sha256File,
  verifyArchiveDir,
  writeMonthFile,
} from '../../scripts/cleanup/lib/archive-files.ts'
export { type PurgeOptions, type PurgeResult, purgeInBatches } from '../../scripts/cleanup/lib/purge.ts'
export {
  assertWithinLimit,
  estimateRemoval,
  parseFraction,
  type RemovalRange,
  readMaxFraction,
  removableWhere,
} from '../../scripts/cleanup/lib/removal-plan.ts'
export { type ProbeResult, percentile, probeAll, probeUrl } from '../../scripts/monitoring/lib/probes.ts'
export { type Alerter, type AlertInput, type AlertResult, createAlerter, type Severity } from './alerting/alerts.ts'
export { databaseKey, observeDatabase } from './alerting/database-outage.ts'
export { type EmailMessage, sendEmail } from './alerting/email.ts'
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
} from './alerting/policy.ts'
export { createFilePolicyStore, createSqlPolicyStore } from './alerting/policy-store.ts'
export { type SlackMessage, sendSlack } from './alerting/slack.ts'
export { type Config, createEnvReader, type Env, type EnvReader, parseConfig } from './config/config.ts'
export { redactUrl } from './config/redact.ts'
export { connect, type Database, openDatabase } from './database/client.ts'
export { migrate } from './database/migrate.ts'
export { listRuns, type RunRecord, type RunStatus } from './records/runs.ts'
export { AbortedError, ConfigError, isTransient, NonRetryableError, toError } from './runtime/errors.ts'
export { createLogger, type Logger } from './runtime/log.ts'
export { backoffDelay, retry, sleep } from './runtime/retry.ts'
export { defineJob, exitCodes, runJob } from './runtime/runner.ts'
export type { Job, JobContext, JobDefinition, JobState, JobStats, RunInfo, Summary } from './runtime/types.ts'
export { type Duration, formatMs, toMs } from './text/duration.ts'
