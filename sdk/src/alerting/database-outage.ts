import path from 'node:path'
import type { Config } from '../config/config.ts'
import { createMasker } from '../config/redact.ts'
import { databaseAddress } from '../database/client.ts'
import type { Logger } from '../runtime/log.ts'
import { openEmail, postSlack } from './channels.ts'
import { adminRoutes } from './outbox.ts'
import { createAlertPolicy, type PolicyDecision, type PolicyRule, type PolicySender } from './policy.ts'
import { createFilePolicyStore } from './policy-store.ts'
import { renderIncidentNotice } from './templates.ts'

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

/**
 * A sender that needs no database: straight to Slack and email (masked), logged when no channel is configured. It
 * reports which channels took the notice, so the policy keeps it due when none did.
 */
export function createDirectSender(config: Config, log: Logger, runUrl?: string): PolicySender {
  const mask = createMasker(config.secrets)
  return async (kind, input) => {
    const rendered = renderIncidentNotice({
      kind,
      severity: input.severity,
      title: mask(input.title),
      text: mask(input.text),
      fields: input.fields,
      at: new Date(),
      where: config.environment,
      runUrl,
    })
    const routes = adminRoutes(config)
    if (routes.length === 0) log.warn(`alert (no channel configured): ${rendered.subject}`, { text: mask(input.text) })
    const delivered: string[] = []
    const failed: string[] = []
    await Promise.all(
      routes.map(async (route) => {
        try {
          if (route.channel === 'slack') await postSlack(config, rendered.slack)
          else {
            const email = await openEmail(config)
            try {
              await email.send(
                { subject: rendered.subject, text: rendered.text, html: rendered.html },
                route.recipients,
              )
            } finally {
              email.close()
            }
          }
          delivered.push(route.channel)
        } catch (err) {
          failed.push(route.channel)
          log.warn(`alert channel ${route.channel} failed`, { title: rendered.subject, reason: (err as Error).message })
        }
      }),
    )
    return { delivered, failed }
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
