import { defineJob } from '@admin-jobs/sdk'
import { groupDigest, renderDigest, renderOwnerNotice } from './lib/digest.ts'
import {
  claimExpiredListing,
  claimNotice,
  type ExpiringItem,
  expiredListed,
  findExpiringItems,
  mostUrgentThreshold,
  noticeSent,
  peekUndigested,
  type SentNotice,
  takeUndigested,
} from './lib/expiry.ts'

export default defineJob({
  description:
    'Email owners when credentials, licenses and subscriptions cross an expiry threshold; daily admin digest',
  timeout: '15m',
  async run({ sql, log, dryRun, config, mail, slack, now, signal, summary }) {
    const at = now()
    const thresholds = config.expiryNoticeDays
    const items = await findExpiringItems(sql, at, Math.max(0, ...thresholds))
    const expired = items.filter((i) => i.expiresAt <= at)
    const canMail = Boolean(config.smtpUrl)
    if (!canMail && !dryRun) log.warn('SMTP_URL is not set: owner notices wait until it is')

    let sent = 0
    let withoutOwner = 0
    let alreadySent = 0
    const wouldSend: SentNotice[] = []
    const failures: { item: ExpiringItem; error: unknown }[] = []
    for (const item of items) {
      signal.throwIfAborted()
      const threshold = mostUrgentThreshold(item.expiresAt, at, thresholds)
      if (threshold === undefined) continue
      if (dryRun) {
        if (await noticeSent(sql, item, threshold)) alreadySent++
        else {
          log.info('dry run: would notify owner', { item: `${item.kind} ${item.id}`, threshold, to: item.email ?? '-' })
          wouldSend.push({ ...item, threshold, recipient: item.email })
        }
        continue
      }
      if (!canMail && item.email) continue
      try {
        // The claim and the send share one transaction: a failed send rolls the claim back, and a concurrent run
        // blocks on the claimed row until this one commits, then sees the conflict and sends nothing.
        const claimed = await sql.begin(async (tx) => {
          if (!(await claimNotice(tx, item, threshold))) return false
          if (item.email) await mail(renderOwnerNotice(item, threshold, at))
          return true
        })
        if (!claimed) alreadySent++
        else if (item.email) sent++
        else withoutOwner++
      } catch (error) {
        log.warn('owner notice failed; it will be retried', { item: `${item.kind} ${item.id}`, error: error as Error })
        failures.push({ item, error })
      }
    }

    const digest = await sendDigest()
    log.info('expiry notices', { sent, withoutOwner, alreadySent, expired: expired.length, digest: digest.items })
    summary.table([
      ['notices sent', 'no owner address', 'already sent', 'expired, still active', 'digest items'],
      [dryRun ? wouldSend.length : sent, withoutOwner, alreadySent, expired.length, digest.items],
    ])
    if (failures.length)
      throw new Error(`${failures.length} owner notice(s) could not be sent`, { cause: failures[0]!.error })
    return {
      sent: dryRun ? 0 : sent,
      wouldSend: wouldSend.length,
      withoutOwner,
      alreadySent,
      expired: expired.length,
      digestItems: digest.items,
    }

    async function sendDigest(): Promise<{ items: number }> {
      const deliver = async (notices: SentNotice[], listExpired: boolean) => {
        const groups = groupDigest(notices, listExpired ? expired : [], at)
        if (groups.length === 0) return 0
        const message = renderDigest(groups, at)
        // Email and Slack go out together; if either fails the transaction rolls back and the next run retries both.
        if (config.smtpUrl && config.alertEmailTo.length) await mail(message.email)
        if (config.slackWebhookUrl) await slack(message.slack)
        return groups.reduce((n, g) => n + g.lines.length, 0)
      }
      if (dryRun) {
        const notices = [...(await peekUndigested(sql)), ...wouldSend]
        return { items: await deliver(notices, expired.length > 0 && !(await expiredListed(sql, at))) }
      }
      if (!config.slackWebhookUrl && !(config.smtpUrl && config.alertEmailTo.length)) {
        log.warn('no admin channel (SLACK_WEBHOOK_URL, SMTP_URL + ALERT_EMAIL_TO): digest waits until one is set')
        return { items: 0 }
      }
      const items = await sql.begin(async (tx) => {
        const notices = await takeUndigested(tx, at)
        const listExpired = expired.length > 0 && (await claimExpiredListing(tx, at, expired.length))
        return deliver(notices, listExpired)
      })
      return { items }
    }
  },
})
