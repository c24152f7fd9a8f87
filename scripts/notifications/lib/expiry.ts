import type { Sql, TransactionSql } from 'postgres'

const day = 24 * 60 * 60 * 1000

/** Something that expires: a credential, a license or a subscription that will not renew. */
export interface ExpiringItem {
  kind: 'credential' | 'license' | 'subscription'
  id: string
  label: string
  expiresAt: Date
  /** The owner's address as the data holds it: users.email via owner_id for credentials, contact_email otherwise. */
  email: string | null
}

/**
 * The most urgent threshold (in days) an item has crossed at `now`, or undefined when it is further out than every
 * threshold or already expired. After missed runs this is still one threshold: stale, less urgent ones are skipped.
 */
export function mostUrgentThreshold(expiresAt: Date, now: Date, thresholds: readonly number[]): number | undefined {
  const left = expiresAt.getTime() - now.getTime()
  if (left <= 0) return undefined
  const crossed = thresholds.filter((t) => left <= t * day)
  return crossed.length ? Math.min(...crossed) : undefined
}

/** Whole days left until `expiresAt`, rounded up (0 once expired). */
export function daysLeft(expiresAt: Date, now: Date): number {
  return Math.max(0, Math.ceil((expiresAt.getTime() - now.getTime()) / day))
}

/** A credential kind in words, as a notice names it: `oauth_client_secret` → `OAuth client secret`. */
export function credentialKindWords(kind: string): string {
  const words: Record<string, string> = {
    api_key: 'API key',
    tls_certificate: 'TLS certificate',
    oauth_client_secret: 'OAuth client secret',
    ssh_key: 'SSH key',
    service_account_key: 'service account key',
  }
  return words[kind] ?? kind.replace(/_/g, ' ')
}

/** Live items that expire within `withinDays` of `now`, already expired ones included (still active/unrevoked). */
export async function findExpiringItems(sql: Sql, now: Date, withinDays: number): Promise<ExpiringItem[]> {
  const until = new Date(now.getTime() + withinDays * day)
  const rows = await sql<(ExpiringItem & { credentialKind: string | null; name: string | null })[]>`
    select 'credential' as kind, c.id::text as id, null as label, c.kind as "credentialKind", c.name,
           c.expires_at as "expiresAt", u.email
    from credentials c left join users u on u.id = c.owner_id
    where c.revoked_at is null and c.expires_at is not null and c.expires_at <= ${until}
    union all
    select 'license', l.id::text, l.product || ' license of ' || l.customer, null, null, l.expires_at, l.contact_email
    from licenses l
    where l.status = 'active' and l.expires_at <= ${until}
    union all
    select 'subscription', s.id::text, s.plan || ' subscription of ' || s.customer, null, null, s.current_period_end,
           s.contact_email
    from subscriptions s
    where s.cancel_at_period_end and s.status in ('trialing', 'active', 'past_due') and s.current_period_end <= ${until}
    order by 6, 1, 2`
  return rows.map(({ credentialKind, name, ...item }) =>
    item.kind === 'credential' ? { ...item, label: `${credentialKindWords(credentialKind ?? '')} "${name}"` } : item,
  )
}

/**
 * Claims the notice for (item, expiry, threshold) inside `tx`: true when this transaction owns it and must queue it.
 * A concurrent claimer blocks on the row until this transaction ends; a rollback releases the claim.
 */
export async function claimNotice(tx: TransactionSql, item: ExpiringItem, threshold: number): Promise<boolean> {
  const rows = await tx`
    insert into jobs.expiry_notices (item_kind, item_id, expires_at, threshold_days, recipient, label)
    values (${item.kind}, ${item.id}, ${item.expiresAt}, ${threshold}, ${item.email}, ${item.label})
    on conflict do nothing
    returning 1`
  return rows.length === 1
}

/** Whether the notice for (item, expiry, threshold) was already recorded (dry runs ask instead of claiming). */
export async function noticeSent(sql: Sql, item: ExpiringItem, threshold: number): Promise<boolean> {
  const rows = await sql`
    select 1 from jobs.expiry_notices
    where item_kind = ${item.kind} and item_id = ${item.id} and expires_at = ${item.expiresAt}
      and threshold_days = ${threshold}`
  return rows.length === 1
}

/** A notice recorded (queued, refused, or without an address) but not yet listed in an admins' digest. */
export interface SentNotice {
  kind: ExpiringItem['kind']
  id: string
  label: string
  expiresAt: Date
  threshold: number
  /** The address as the data held it (refused when not exactly one address), or null. */
  recipient: string | null
}

/** Marks every undigested notice as digested at `at` and returns them; rolled back with `tx` if the digest fails. */
export async function takeUndigested(tx: TransactionSql, at: Date): Promise<SentNotice[]> {
  return tx<SentNotice[]>`
    update jobs.expiry_notices set digested_at = ${at}
    where digested_at is null
    returning item_kind as kind, item_id as id, label, expires_at as "expiresAt", threshold_days as threshold, recipient`
}

/** Notices not digested yet, without taking them (dry runs). */
export async function peekUndigested(sql: Sql): Promise<SentNotice[]> {
  return sql<SentNotice[]>`
    select item_kind as kind, item_id as id, label, expires_at as "expiresAt", threshold_days as threshold, recipient
    from jobs.expiry_notices where digested_at is null`
}

/** The UTC day (`YYYY-MM-DD`) whose admins' digest a run at `now` queues. */
export function digestDay(now: Date): string {
  return now.toISOString().slice(0, 10)
}

/** Whether the admins' digest of `day` was queued already (it is queued once a day). */
export async function digestQueued(sql: Sql | TransactionSql, day: string): Promise<boolean> {
  const rows = await sql`select 1 from jobs.expiry_digests where day = ${day}`
  return rows.length === 1
}

/**
 * Records in `tx` that the digest of `day` is queued, with how many expired items it lists. A plain insert: a second
 * digest of the same day (only possible without the job's lock) fails and rolls its transaction back.
 */
export async function recordDigest(tx: TransactionSql, day: string, expired: number): Promise<void> {
  await tx`insert into jobs.expiry_digests (day, expired) values (${day}, ${expired})`
}
