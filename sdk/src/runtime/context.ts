import { createAlerter } from '../alerting/alerts.ts'
import { sendEmail } from '../alerting/email.ts'
import { sendSlack } from '../alerting/slack.ts'
import { connect, databaseAddress } from '../database/client.ts'
import { createState } from '../records/state.ts'
import type { StartedRun } from './run.ts'
import type { DatabaseInfo, JobContext } from './types.ts'

/** The one argument a job's `run` gets: everything it may touch, scoped to this run. */
export function buildContext(run: StartedRun): JobContext<unknown> {
  const { log, dryRun, config } = run
  const alerter = createAlerter({ sql: run.control, config, log, job: run.id, runUrl: run.runUrl, dryRun })
  return {
    job: run.id,
    sql: run.db.sql,
    database: databaseInfo(run),
    log,
    alert: alerter.alert,
    resolveAlert: alerter.resolve,
    mail: async (message) => {
      if (dryRun) return log.info('dry run: would send email', { subject: message.subject })
      await sendEmail(config, message)
    },
    slack: async (message) => {
      if (dryRun) return log.info('dry run: would post to Slack', { text: message.text.slice(0, 80) })
      await sendSlack(config, message)
    },
    signal: run.deadline.signal,
    dryRun,
    config,
    settings: run.settings,
    flags: run.flags,
    state: createState(run.db.sql, run.id, dryRun),
    summary: run.summary,
    run: {
      id: run.runId,
      attempt: run.attempt,
      trigger: run.trigger,
      url: run.runUrl,
      startedAt: run.startedAt,
      deadline: run.deadline.at,
    },
    now: run.now,
  }
}

function databaseInfo(run: StartedRun): DatabaseInfo {
  const { url, embedded } = run.db
  const { host, port, database } = databaseAddress(url)
  const user = decodeURIComponent(new URL(url).username)
  return {
    url,
    host,
    port,
    name: database,
    user,
    embedded,
    connect: (options = {}) =>
      connect(url, {
        max: options.max ?? 1,
        applicationName: options.applicationName ?? `${run.applicationName}:probe`,
        connectTimeoutMs: options.connectTimeoutMs,
      }),
  }
}
