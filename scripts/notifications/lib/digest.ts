import { type Notice, singleAddress, whyNotAnAddress } from '@admin-jobs/sdk'
import { type EmailBlock, humanDate, humanTime, renderEmail, type Tone } from '@admin-jobs/sdk/email'
import { daysLeft, type ExpiringItem, type SentNotice } from './expiry.ts'

const dayMs = 86_400_000

/** One item of the admins' digest, as it is listed. */
export interface DigestItem {
  label: string
  kind: ExpiringItem['kind']
  id: string
  expiresAt: Date
  /** `expired 3 days ago` / `in 5 days`. */
  when: string
  /** The owner's address and what became of the notice, or why there is none (never a refused raw value). */
  owner: string
}

/** One urgency group of the admins' digest, most urgent first: expired, then each threshold, smallest first. */
export interface DigestGroup {
  heading: string
  /** `expired` or the threshold in days. */
  urgency: 'expired' | number
  items: DigestItem[]
}

/** How the digest names an owner's address: the address, or why it was refused (never the raw value: it may inject). */
function owner(value: string | null): string {
  if (!value) return 'no owner address'
  const address = singleAddress(value)
  return address ? `owner ${address}` : `owner address refused (${whyNotAnAddress(value)})`
}

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`

/** `in 30 days` (whole days, rounded up), or `in 5 hours` within the last day. */
export function expiresIn(expiresAt: Date, now: Date): string {
  const ms = expiresAt.getTime() - now.getTime()
  if (ms <= 0) return `${plural(Math.floor(-ms / dayMs), 'day')} ago`
  if (ms < dayMs) return `in ${plural(Math.max(1, Math.floor(ms / 3_600_000)), 'hour')}`
  return `in ${plural(daysLeft(expiresAt, now), 'day')}`
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
      urgency: 'expired',
      items: expired.map((i) => ({ ...i, when: `expired ${expiresIn(i.expiresAt, now)}`, owner: owner(i.email) })),
    })
  const thresholds = [...new Set(notices.map((n) => n.threshold))].sort((a, b) => a - b)
  for (const t of thresholds) {
    const members = notices
      .filter((n) => n.threshold === t)
      .sort((a, b) => a.expiresAt.getTime() - b.expiresAt.getTime())
    groups.push({
      heading: `Expiring within ${plural(t, 'day')} (${members.length})`,
      urgency: t,
      items: members.map((n) => ({
        ...n,
        when: expiresIn(n.expiresAt, now),
        owner: singleAddress(n.recipient) ? `${owner(n.recipient)} notified` : owner(n.recipient),
      })),
    })
  }
  return groups
}

const toneOf = (urgency: DigestGroup['urgency']): Tone =>
  urgency === 'expired' || urgency <= 1 ? 'critical' : urgency <= 7 ? 'warning' : 'info'
const urgencyLabel = (urgency: DigestGroup['urgency']) => (urgency === 'expired' ? 'expired' : plural(urgency, 'day'))
// Most urgent first: what expires within a day (an outage is near), then what expired most recently (it may just have
// broken something), then the other thresholds, soonest first.
const urgencyRank = (urgency: DigestGroup['urgency']) => (urgency === 'expired' ? 1.5 : urgency)
const kinds = ['credential', 'license', 'subscription'] as const

/**
 * The admins' digest: a summary first (counts by urgency, a table by kind and urgency, the five most urgent items),
 * then the full list by urgency; the email's subject, text and HTML parts, and the Slack post.
 */
export function renderDigest(
  groups: readonly DigestGroup[],
  now: Date,
  where = 'admin-jobs',
): Required<Pick<Notice, 'subject' | 'text' | 'html' | 'slack'>> {
  const count = groups.reduce((n, g) => n + g.items.length, 0)
  const title = `Expiry digest ${now.toISOString().slice(0, 10)}: ${count} item${count === 1 ? '' : 's'} need attention`
  const urgent = groups
    .flatMap((g) => g.items.map((i) => ({ ...i, urgency: g.urgency })))
    .sort(
      (a, b) =>
        urgencyRank(a.urgency) - urgencyRank(b.urgency) ||
        (a.urgency === 'expired'
          ? b.expiresAt.getTime() - a.expiresAt.getTime()
          : a.expiresAt.getTime() - b.expiresAt.getTime()),
    )
    .slice(0, 5)
  const byKind = kinds
    .map((kind) => [kind, ...groups.map((g) => String(g.items.filter((i) => i.kind === kind).length))])
    .filter((row) => row.slice(1).some((n) => n !== '0'))
    .map((row) => [...row, String(row.slice(1).reduce((n, c) => n + Number(c), 0))])
  const blocks: EmailBlock[] = [
    {
      type: 'stats',
      items: groups.map((g) => ({
        label: g.urgency === 'expired' ? 'expired, still active' : `expiring within ${plural(g.urgency, 'day')}`,
        value: String(g.items.length),
        tone: toneOf(g.urgency),
      })),
    },
    {
      type: 'table',
      columns: [
        'Kind',
        ...groups.map((g) => (g.urgency === 'expired' ? 'Expired' : `≤ ${urgencyLabel(g.urgency)}`)),
        'Total',
      ],
      rows: byKind,
      numeric: groups.map((_, i) => i + 1).concat(groups.length + 1),
    },
    { type: 'heading', text: 'Most urgent' },
    {
      type: 'list',
      items: urgent.map((i) => ({
        tag: i.urgency === 'expired' ? 'expired' : `≤ ${urgencyLabel(i.urgency)}`,
        tone: toneOf(i.urgency),
        text: `${i.label}: ${i.when} (${humanTime(i.expiresAt)}); ${i.owner}`,
      })),
    },
    ...groups.flatMap((g): EmailBlock[] => [
      { type: 'heading', text: g.heading },
      {
        type: 'table',
        columns: ['Item', 'Expires (UTC)', 'Owner'],
        rows: g.items.map((i) => [
          `${i.label} (${i.kind} ${i.id})`,
          `${humanTime(i.expiresAt)}, ${i.when}`,
          i.owner.replace(/^owner /, ''),
        ]),
      },
    ]),
    {
      type: 'note',
      text: 'Expired items stay listed every day until they are renewed, revoked or marked expired. Owners get one notice per threshold crossed.',
    },
  ]
  const { text, html } = renderEmail({
    title,
    tag: 'expiry digest',
    tone: groups[0] ? toneOf(groups[0].urgency) : 'info',
    preview: groups.map((g) => g.heading).join(' · '),
    blocks,
    footer: `Sent by admin-jobs on ${where} (notifications/expiry), once a day.`,
  })
  const slackBlocks = [
    { type: 'header', text: { type: 'plain_text', text: title.slice(0, 150) } },
    { type: 'section', text: { type: 'mrkdwn', text: groups.map((g) => `*${g.heading}*`).join(' · ') } },
    ...groups.map((g) => ({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `*${g.heading}*\n${g.items.map((i) => `• ${i.label} (${i.kind} ${i.id}) ${i.when}, ${humanDate(i.expiresAt)}; ${i.owner}`).join('\n')}`.slice(
          0,
          3000,
        ),
      },
    })),
  ]
  return { subject: title, text, html, slack: { text: title, blocks: slackBlocks } }
}

/** The owner's notice for one item at one threshold: subject, text and HTML parts. */
export function renderOwnerNotice(
  item: ExpiringItem,
  threshold: number,
  now: Date,
  where = 'admin-jobs',
): Required<Pick<Notice, 'subject' | 'text' | 'html'>> {
  const what = item.kind === 'credential' ? `Your ${item.label}` : `The ${item.label}`
  const within = expiresIn(item.expiresAt, now)
  const tone: Tone = threshold <= 1 ? 'critical' : threshold <= 7 ? 'warning' : 'info'
  const { text, html } = renderEmail({
    title: `${what} expires ${within}`,
    tag: `${threshold}-day expiry notice`,
    tone,
    blocks: [
      { type: 'text', text: `${what} expires on ${humanTime(item.expiresAt)}, ${within}.` },
      {
        type: 'facts',
        rows: [
          ['what', item.label],
          ['expires', humanTime(item.expiresAt)],
          ['time left', within.replace(/^in /, '')],
        ],
      },
      {
        type: 'text',
        text:
          item.kind === 'credential'
            ? 'Rotate or renew it before then to avoid an outage.'
            : 'Renew it before then to avoid an interruption of service.',
      },
      { type: 'note', text: `This is the ${threshold}-day notice for ${item.kind} ${item.id}.` },
    ],
    footer: `Sent by admin-jobs on ${where}.`,
  })
  return { subject: `${what} expires ${within} (${humanDate(item.expiresAt)})`, text, html }
}
