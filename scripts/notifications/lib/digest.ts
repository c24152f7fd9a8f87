import { type Notice, singleAddress, whyNotAnAddress } from '@admin-jobs/sdk'
import { daysLeft, type ExpiringItem, type SentNotice } from './expiry.ts'

/** One urgency group of the admins' digest, most urgent first. */
export interface DigestGroup {
  heading: string
  lines: string[]
}

const date = (d: Date) => d.toISOString().slice(0, 10)

/** How the digest names an owner's address: the address, or why it was refused (never the raw value: it may inject). */
function owner(value: string | null): string {
  if (!value) return 'no owner address'
  const address = singleAddress(value)
  return address ? `owner ${address}` : `owner address refused (${whyNotAnAddress(value)})`
}

/** Groups expired items and fresh notices by urgency: expired first, then each threshold, smallest first. */
export function groupDigest(
  notices: readonly SentNotice[],
  expired: readonly ExpiringItem[],
  now: Date,
): DigestGroup[] {
  const groups: DigestGroup[] = []
  if (expired.length)
    groups.push({
      heading: `Expired and still active (${expired.length})`,
      lines: expired.map(
        (i) =>
          `${i.label} (${i.kind} ${i.id}) expired ${date(i.expiresAt)}, ${Math.floor((now.getTime() - i.expiresAt.getTime()) / 86_400_000)} day(s) ago; ${owner(i.email)}`,
      ),
    })
  const thresholds = [...new Set(notices.map((n) => n.threshold))].sort((a, b) => a - b)
  for (const t of thresholds) {
    const members = notices
      .filter((n) => n.threshold === t)
      .sort((a, b) => a.expiresAt.getTime() - b.expiresAt.getTime())
    groups.push({
      heading: `Expiring within ${t} day${t === 1 ? '' : 's'} (${members.length})`,
      lines: members.map(
        (n) =>
          `${n.label} (${n.kind} ${n.id}) expires ${date(n.expiresAt)}, in ${daysLeft(n.expiresAt, now)} day(s); ${noticeOutcome(n.recipient)}`,
      ),
    })
  }
  return groups
}

function noticeOutcome(recipient: string | null): string {
  const who = owner(recipient)
  return singleAddress(recipient) ? `${who} notified` : who
}

/** The admins' digest: the email's subject and text, and the Slack post. */
export function renderDigest(
  groups: readonly DigestGroup[],
  now: Date,
): Required<Pick<Notice, 'subject' | 'text' | 'slack'>> {
  const count = groups.reduce((n, g) => n + g.lines.length, 0)
  const title = `Expiry digest ${date(now)}: ${count} item${count === 1 ? '' : 's'} need attention`
  const text = [title, '', ...groups.flatMap((g) => [g.heading, ...g.lines.map((l) => `  - ${l}`), ''])].join('\n')
  const blocks = [
    { type: 'header', text: { type: 'plain_text', text: title.slice(0, 150) } },
    ...groups.map((g) => ({
      type: 'section',
      text: { type: 'mrkdwn', text: `*${g.heading}*\n${g.lines.map((l) => `• ${l}`).join('\n')}`.slice(0, 3000) },
    })),
  ]
  return { subject: title, text, slack: { text: title, blocks } }
}

/** The owner's notice for one item at one threshold. */
export function renderOwnerNotice(
  item: ExpiringItem,
  threshold: number,
  now: Date,
): Required<Pick<Notice, 'subject' | 'text'>> {
  const left = daysLeft(item.expiresAt, now)
  const what = item.kind === 'credential' ? `Your ${item.label}` : `The ${item.label}`
  return {
    subject: `${what} expires in ${left} day${left === 1 ? '' : 's'} (${date(item.expiresAt)})`,
    text: [
      `${what} expires on ${item.expiresAt.toISOString()} (in ${left} day${left === 1 ? '' : 's'}).`,
      '',
      item.kind === 'credential'
        ? 'Rotate or renew it before then to avoid an outage.'
        : 'Renew it before then to avoid an interruption of service.',
      '',
      `This is the ${threshold}-day notice for ${item.kind} ${item.id}.`,
    ].join('\n'),
  }
}
