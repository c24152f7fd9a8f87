import { defineJob } from '@admin-jobs/sdk'
import { type DigestGroup, groupDigest, renderDigest, renderOwnerNotice } from './lib/digest.ts'
import {
  claimNotice,
  digestDay,
  digestQueued,
  findExpiringItems,
  mostUrgentThreshold,
  noticeSent,
  peekUndigested,
  recordDigest,
  type SentNotice,
  takeUndigested,
} from './lib/expiry.ts'

const itemsOf = (groups: readonly DigestGroup[]) => groups.reduce((n, g) => n + g.items.length, 0)

export default defineJob({
  description:
    'Email owners when credentials, licenses and subscriptions cross an expiry threshold; daily admin digest',
  timeout: '15m',
  async run({ sql, log, dryRun, config, notify, now, signal, summary }) {
    const at = now()
    const thresholds = config.expiryNoticeDays
    const items = await findExpiringItems(sql, at, Math.max(0, ...thresholds))
    const expired = items.filter((i) => i.expiresAt <= at)
    const canMail = Boolean(config.smtpUrl)
    if (!canMail && !dryRun) log.warn('SMTP_URL is not set: owner notices wait until it is')

    const counts = { queued: 0, refused: 0, withoutOwner: 0, alreadySent: 0 }
    const wouldSend: SentNotice[] = []
    for (const item of items) {
      signal.throwIfAborted()
      const threshold = mostUrgentThreshold(item.expiresAt, at, thresholds)
      if (threshold === undefined) continue
      const notice = { kind: 'expiry-notice', ...renderOwnerNotice(item, threshold, at, config.environment) }
      if (dryRun) {
        if (await noticeSent(sql, item, threshold)) counts.alreadySent++
        else {
          if (item.email) await notify({ ...notice, to: item.email })
          wouldSend.push({ ...item, threshold, recipient: item.email })
        }
        continue
      }
      if (!canMail && item.email) continue
      // The ledger row and the queued notice commit together: a retry or a re-run finds the row and queues nothing.
      // An address that is not exactly one plain address is refused by notify (recorded, logged once, sent nowhere)
      // and its ledger row keeps it from being tried again every day.
      const outcome = await sql.begin(async (tx) => {
        if (!(await claimNotice(tx, item, threshold))) return 'alreadySent'
        if (!item.email) return 'withoutOwner'
        const result = await notify({ ...notice, to: item.email }, tx)
        return result.refused ? 'refused' : 'queued'
      })
      counts[outcome]++
    }

    const digestItems = await queueDigest()
    log.info('expiry notices', { ...counts, expired: expired.length, digest: digestItems })
    summary.table([
      [
        'notices queued',
        'refused recipients',
        'no owner address',
        'already sent',
        'expired, still active',
        'digest items',
      ],
      [
        dryRun ? wouldSend.length : counts.queued,
        counts.refused,
        counts.withoutOwner,
        counts.alreadySent,
        expired.length,
        digestItems,
      ],
    ])
    return { ...counts, wouldSend: wouldSend.length, expired: expired.length, digestItems }

    /** Queues the admins' digest of the day (once a day), listing what was recorded since the last one. */
    async function queueDigest(): Promise<number> {
      const day = digestDay(at)
      const digest = (groups: readonly DigestGroup[]) => ({
        kind: 'digest',
        key: `digest:${day}`,
        ...renderDigest(groups, at, config.environment),
      })
      if (dryRun) {
        if (await digestQueued(sql, day)) return 0
        const groups = groupDigest([...(await peekUndigested(sql)), ...wouldSend], expired, at)
        if (groups.length) await notify(digest(groups))
        return itemsOf(groups)
      }
      if (!config.slackWebhookUrl && !(config.smtpUrl && config.alertEmailTo.length)) {
        log.warn('no admin channel (SLACK_WEBHOOK_URL, SMTP_URL + ALERT_EMAIL_TO): digest waits until one is set')
        return 0
      }
      // The day's row, the notices it lists and the message commit together: a retry or a re-run of the day queues
      // no second digest, and notices recorded after it wait for the next day's.
      return sql.begin(async (tx) => {
        if (await digestQueued(tx, day)) return 0
        const groups = groupDigest(await takeUndigested(tx, at), expired, at)
        if (groups.length === 0) return 0
        await recordDigest(tx, day, expired.length)
        await notify(digest(groups), tx)
        return itemsOf(groups)
      }) as Promise<number>
    }
  },
})
