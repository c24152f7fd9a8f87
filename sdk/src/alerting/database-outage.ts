import path from 'node:path'
import type { Config } from '../config/config.ts'
import { createMasker } from '../config/redact.ts'
import { databaseAddress } from '../database/client.ts'
import type { Logger } from '../runtime/log.ts'
import { configuredChannels, renderAlertText, sendToChannels } from './alerts.ts'
import { sendEmail } from './email.ts'
import { createAlertPolicy, type PolicyDecision, type PolicyRule, type PolicySender } from './policy.ts'
import { createFilePolicyStore } from './policy-store.ts'
import { sendSlack } from './slack.ts'

/** The policy key of the one shared "database unreachable" incident. */
export const databaseKey = 'database'

/**
 * Where a database's incident state lives (the database cannot hold its own outage): `<dataDir>/alert-state/` for the
 * embedded database, `<dataDir>/alert-state/<host>_<port>_<database>/` for DATABASE_URL, so two servers watched from
 * one machine keep apart incidents.
 */
export function outageStateDir(config: Pick<Config, 'dataDir' | 'databaseUrl'>): string {
  const dir = path.join(config.dataDir, 'alert-state')
  if (!config.databaseUrl) return dir
  const { host, port, database } = databaseAddress(config.databaseUrl)
  return path.join(dir, `${host}_${port}_${database}`.replace(/[^\w.-]/g, '_'))
}

/** A sender that needs no database: straight to Slack and email (masked), logged when no channel is configured. */
export function createDirectSender(config: Config, log: Logger, runUrl?: string): PolicySender {
  const mask = createMasker(config.secrets)
  return async (kind, input) => {
    const title = mask(`${kind === 'reminder' ? 'Still failing: ' : ''}${input.title}`)
    const text = mask(input.text)
    const body = mask(renderAlertText({ title, text, fields: input.fields }, runUrl))
    const channels = configuredChannels(config)
    if (channels.length === 0) log.warn(`alert (no channel configured): ${title}`, { text })
    const icon = kind === 'recovery' ? ':white_check_mark:' : ':rotating_light:'
    const subject = `[${kind === 'recovery' ? 'resolved' : input.severity}] ${title}`
    // The policy reads the result: when every channel failed, the notice is due again on the next attempt.
    return sendToChannels(channels, log, title, (channel) =>
      channel === 'slack'
        ? sendSlack(config, { text: `${icon} ${title}\n${text}` })
        : sendEmail(config, { subject, text: body }),
    )
  }
}

/** Options of observeDatabase; `send` defaults to the direct sender (use the recording alerter when the database is up). */
export interface DatabaseObservation {
  config: Config
  log: Logger
  ok: boolean
  error?: string
  now: Date
  /** The job that saw it, named in the alert. */
  job?: string
  runUrl?: string
  rule?: PolicyRule
  dryRun?: boolean
  send?: PolicySender
}

/**
 * Storm guard: every job that cannot open the database and the health check's database target feed this one incident,
 * so an outage raises one alert (after `failuresToAlert` consecutive failed attempts, default 2), hourly reminders and
 * one recovery, instead of one alert per job or target. State lives in a file under the data dir.
 */
export async function observeDatabase(options: DatabaseObservation): Promise<PolicyDecision> {
  const { config, log } = options
  const policy = createAlertPolicy({
    store: createFilePolicyStore(outageStateDir(config)),
    send: options.send ?? createDirectSender(config, log, options.runUrl),
    log,
    rule: options.rule,
    dryRun: options.dryRun,
  })
  return policy.observe(
    {
      key: databaseKey,
      ok: options.ok,
      error: options.error,
      title: 'Database unreachable',
      severity: 'critical',
      fields: { 'last seen by': options.job },
    },
    options.now,
  )
}
