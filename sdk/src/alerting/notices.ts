import type { Sql, TransactionSql } from 'postgres'
import type { Config } from '../config/config.ts'
import { createMasker } from '../config/redact.ts'
import type { Logger } from '../runtime/log.ts'
import type { Notice, NotifyResult } from '../runtime/types.ts'
import { enqueue, type RefusedRoute, type Route } from './outbox.ts'
import { singleAddress, whyNotAnAddress } from './recipients.ts'

/** Options of createNotifier: the pool to queue on when no transaction is given, and the run the messages belong to. */
export interface NotifierOptions {
  sql: Sql
  config: Config
  log: Logger
  job?: string
  runId?: number
  dryRun?: boolean
}

/**
 * Queues notices for delivery. A notice to the admins goes to ALERT_EMAIL_TO (and Slack when it has a Slack post); a
 * notice to an address from data goes to exactly that address, or, when the value is not one plain address (a list,
 * a line break, an injected header), is recorded as refused with the reason and sent nowhere.
 */
export function createNotifier(
  options: NotifierOptions,
): (notice: Notice, tx?: TransactionSql) => Promise<NotifyResult> {
  const { config, log } = options
  const mask = createMasker(config.secrets)
  return async (notice, tx) => {
    const routes: Route[] = []
    const refused: RefusedRoute[] = []
    const toAdmins = notice.to === undefined || notice.to === 'admins'
    if (toAdmins) {
      if (config.smtpUrl && config.alertEmailTo.length > 0)
        routes.push({ channel: 'email', recipients: config.alertEmailTo })
      if (notice.slack && config.slackWebhookUrl) routes.push({ channel: 'slack' })
    } else {
      const address = singleAddress(notice.to)
      if (!address) refused.push({ channel: 'email', reason: `recipient refused: ${whyNotAnAddress(notice.to)}` })
      else if (config.smtpUrl) routes.push({ channel: 'email', recipients: [address] })
    }
    if (options.dryRun) {
      // A dry run says what would happen: a refused recipient would get nothing.
      if (refused[0])
        log.info(`dry run: would refuse ${notice.kind}: ${refused[0].reason}`, { subject: notice.subject })
      else
        log.info('dry run: would send', {
          kind: notice.kind,
          subject: notice.subject,
          to: toAdmins ? 'admins' : 'one recipient',
        })
      return { queued: false, refused: refused[0]?.reason }
    }
    if (routes.length === 0 && refused.length === 0)
      log.warn(`no channel configured for ${notice.kind}: recorded, not sent`, { subject: notice.subject })
    if (refused[0]) log.warn(`${notice.kind} not sent: ${refused[0].reason}`, { subject: notice.subject })
    const message = {
      kind: notice.kind,
      key: notice.key,
      job: options.job,
      runId: options.runId,
      subject: mask(notice.subject),
      text: mask(notice.text),
      html: notice.html === undefined ? undefined : mask(notice.html),
      slack: notice.slack,
      attachments: notice.attachments?.map((a) => ({
        filename: a.filename,
        contentType: a.contentType,
        cid: a.cid,
        base64: a.content.toString('base64'),
      })),
    }
    const queued = await enqueue(tx ?? options.sql, message, routes, { from: config.alertEmailFrom, refused })
    return { queued: queued.id !== undefined && routes.length > 0, id: queued.id, refused: refused[0]?.reason }
  }
}
