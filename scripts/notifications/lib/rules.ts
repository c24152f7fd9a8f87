import type { Severity } from '@admin-jobs/sdk'
import type { Sql, TransactionSql } from 'postgres'
import type { AuditEvent } from './watermark.ts'

/** Thresholds of the security rules (env SECURITY_*; defaults in the comments). */
export interface SecurityThresholds {
  /** Failed logins from one IP within `windowMs` (10). */
  failedPerIp: number
  /** Failed logins for one email within `windowMs` (5). */
  failedPerAccount: number
  /** The failed-login window (15m). */
  windowMs: number
  /** An admin's login IP counts as new when unseen for them this long (30 days). */
  newIpLookbackMs: number
  /** A data.export with at least this many rows (10,000). */
  exportRows: number
}

/**
 * One incident a rule found. `dedupeKey` names the incident: the event for single-event rules
 * (`security:<rule>:<audit id>`), the rule and subject for windowed ones (`security:<rule>:<subject>`).
 */
export interface Finding {
  rule: string
  severity: Severity
  subject: string
  dedupeKey: string
  title: string
  text: string
  fields: Record<string, string | number | undefined>
  /** When it happened: the event's time, or the burst's last attempt. */
  at: Date
  /** For windowed rules: the burst, so a continuing burst extends its incident instead of alerting again. */
  window?: { start: Date; end: Date; events: number }
}

interface User {
  id: string
  email: string
  role: string
}

const isAdmin = (u: User | undefined) => u !== undefined && (u.role === 'admin' || u.role === 'owner')
const iso = (d: Date) => d.toISOString().replace('.000Z', 'Z')
const span = (a: Date, b: Date) => `${iso(a)} – ${iso(b)}`

/** Evaluates every rule over `events` (each read exactly once), looking up history and users as needed. */
export async function evaluateRules(
  sql: Sql,
  events: readonly AuditEvent[],
  t: SecurityThresholds,
): Promise<Finding[]> {
  const userIds = new Set<string>()
  for (const e of events) {
    if (e.actorId) userIds.add(e.actorId)
    if (e.targetType === 'user' && e.targetId && /^\d+$/.test(e.targetId)) userIds.add(e.targetId)
  }
  const failed = events.filter((e) => e.action === 'auth.login_failed')
  // Independent look-ups in one read-only transaction: postgres.js pipelines them, one round trip for all four.
  const [userRows, ipFindings, accountFindings, firstLogins] = (await sql.begin('read only', (tx) =>
    Promise.all([
      userIds.size
        ? tx<User[]>`select id::text as id, email, role from users where id = any(${[...userIds]}::bigint[])`
        : ([] as User[]),
      bruteForce(tx, failed, t),
      accountTargeted(tx, failed, t),
      firstAdminLogins(tx, events, t),
    ]),
  )) as [User[], Finding[], Finding[], Set<string>]
  const users = new Map(userRows.map((u) => [u.id, u]))
  const who = (id: string | null) => (id ? (users.get(id)?.email ?? `user ${id}`) : 'unknown')

  const findings: Finding[] = [...ipFindings, ...accountFindings]

  for (const e of events) {
    const from = e.ip ?? 'unknown IP'
    if (e.action === 'user.role_changed' && ['admin', 'owner'].includes(String(e.metadata.to))) {
      findings.push({
        rule: 'privilege-escalation',
        severity: 'critical',
        subject: e.targetId ?? '?',
        dedupeKey: `security:privilege-escalation:${e.id}`,
        title: `Privilege escalation: ${who(e.targetId)} made ${e.metadata.to}`,
        text: `${who(e.actorId)} changed the role of ${who(e.targetId)} from ${e.metadata.from ?? '?'} to ${e.metadata.to} from ${from} at ${iso(e.occurredAt)}.`,
        fields: { who: who(e.actorId), target: who(e.targetId), from, count: 1, window: iso(e.occurredAt) },
        at: e.occurredAt,
      })
    } else if (e.action === 'auth.mfa_disabled' && isAdmin(users.get(e.targetId ?? ''))) {
      const target = users.get(e.targetId!)!
      findings.push({
        rule: 'admin-mfa-disabled',
        severity: 'critical',
        subject: target.id,
        dedupeKey: `security:admin-mfa-disabled:${e.id}`,
        title: `MFA disabled on ${target.role} ${target.email}`,
        text: `${who(e.actorId)} disabled MFA on the ${target.role} account ${target.email} from ${from} at ${iso(e.occurredAt)}.`,
        fields: { who: who(e.actorId), target: target.email, from, count: 1, window: iso(e.occurredAt) },
        at: e.occurredAt,
      })
    } else if (e.action === 'data.export' && Number(e.metadata.rows) >= t.exportRows) {
      const rows = Number(e.metadata.rows)
      findings.push({
        rule: 'mass-export',
        severity: 'critical',
        subject: e.actorId ?? '?',
        dedupeKey: `security:mass-export:${e.id}`,
        title: `Mass export: ${who(e.actorId)} exported ${rows.toLocaleString('en-US')} rows`,
        text: `${who(e.actorId)} exported ${rows.toLocaleString('en-US')} rows of ${e.targetId ?? '?'} from ${from} at ${iso(e.occurredAt)} (threshold ${t.exportRows.toLocaleString('en-US')}).`,
        fields: { who: who(e.actorId), from, count: rows, window: iso(e.occurredAt) },
        at: e.occurredAt,
      })
    } else if (e.action === 'api_key.created' && isAdmin(users.get(e.actorId ?? ''))) {
      findings.push({
        rule: 'admin-api-key',
        severity: 'info',
        subject: e.actorId!,
        dedupeKey: `security:admin-api-key:${e.id}`,
        title: `API key created by ${users.get(e.actorId!)!.role} ${who(e.actorId)}`,
        text: `${who(e.actorId)} created API key ${e.metadata.name ?? e.targetId ?? '?'} from ${from} at ${iso(e.occurredAt)}.`,
        fields: { who: who(e.actorId), from, count: 1, window: iso(e.occurredAt) },
        at: e.occurredAt,
      })
    }
  }
  findings.push(...adminNewIp(events, firstLogins, users, t))
  return findings
}

interface Attempt {
  id: string
  subject: string
  at: Date
  ip: string | null
  email: string | null
}

/** Failed logins from one IP: ≥ failedPerIp within the window. */
async function bruteForce(
  sql: TransactionSql,
  failed: readonly AuditEvent[],
  t: SecurityThresholds,
): Promise<Finding[]> {
  const fresh = failed.filter((e) => e.ip)
  if (!fresh.length) return []
  const [lo, hi] = bounds(fresh, t.windowMs)
  const history = await sql<Attempt[]>`
    select id::text as id, host(ip) as subject, occurred_at as at, host(ip) as ip, metadata ->> 'email' as email
    from audit_logs
    where action = 'auth.login_failed' and ip = any(${[...new Set(fresh.map((e) => e.ip!))]}::inet[])
      and occurred_at >= ${lo} and occurred_at <= ${hi}`
  return bursts(history, fresh, t.failedPerIp, t.windowMs).map((b) => {
    const accounts = [...new Set(b.attempts.map((a) => a.email ?? '?'))]
    return {
      rule: 'brute-force-ip',
      severity: 'critical' as const,
      subject: b.subject,
      dedupeKey: `security:brute-force-ip:${b.subject}`,
      title: `Brute force: ${b.attempts.length} failed logins from ${b.subject}`,
      text: `${b.attempts.length} failed logins from ${b.subject} between ${span(b.start, b.end)} against ${accounts.length} account(s): ${accounts.slice(0, 10).join(', ')}${accounts.length > 10 ? ', …' : ''}.`,
      fields: {
        who: accounts.slice(0, 5).join(', '),
        from: b.subject,
        count: b.attempts.length,
        window: span(b.start, b.end),
      },
      at: b.end,
      window: { start: b.start, end: b.end, events: b.attempts.length },
    }
  })
}

/** Failed logins for one email (any IP): ≥ failedPerAccount within the window. */
async function accountTargeted(
  sql: TransactionSql,
  failed: readonly AuditEvent[],
  t: SecurityThresholds,
): Promise<Finding[]> {
  const email = (e: AuditEvent) => (typeof e.metadata.email === 'string' ? e.metadata.email.toLowerCase() : undefined)
  const fresh = failed.filter((e) => email(e))
  if (!fresh.length) return []
  const [lo, hi] = bounds(fresh, t.windowMs)
  const history = await sql<Attempt[]>`
    select id::text as id, lower(metadata ->> 'email') as subject, occurred_at as at, host(ip) as ip,
           metadata ->> 'email' as email
    from audit_logs
    where action = 'auth.login_failed' and lower(metadata ->> 'email') = any(${[...new Set(fresh.map((e) => email(e)!))]}::text[])
      and occurred_at >= ${lo} and occurred_at <= ${hi}`
  return bursts(history, fresh, t.failedPerAccount, t.windowMs).map((b) => {
    const ips = [...new Set(b.attempts.map((a) => a.ip ?? '?'))]
    return {
      rule: 'account-targeted',
      severity: 'critical' as const,
      subject: b.subject,
      dedupeKey: `security:account-targeted:${b.subject}`,
      title: `Account targeted: ${b.attempts.length} failed logins for ${b.subject}`,
      text: `${b.attempts.length} failed logins for ${b.subject} between ${span(b.start, b.end)} from ${ips.length} IP(s): ${ips.slice(0, 10).join(', ')}${ips.length > 10 ? ', …' : ''}.`,
      fields: {
        who: b.subject,
        from: ips.slice(0, 5).join(', '),
        count: b.attempts.length,
        window: span(b.start, b.end),
      },
      at: b.end,
      window: { start: b.start, end: b.end, events: b.attempts.length },
    }
  })
}

/** Ids of admin/owner logins from an IP they did not log in from in the look-back before. */
async function firstAdminLogins(sql: TransactionSql, events: readonly AuditEvent[], t: SecurityThresholds) {
  const logins = events.filter((e) => e.action === 'auth.login' && e.ip && e.actorId)
  if (!logins.length) return new Set<string>()
  // Admins first (materialized), then one index probe per admin login (lateral + limit 1): a hash anti-join over the
  // auth.login index would read a large part of it on a big table.
  const rows = await sql<{ id: string }[]>`
    with admin_logins as materialized (
      select l.id, l.actor, l.ip, l.at
      from unnest(${logins.map((e) => e.id)}::bigint[], ${logins.map((e) => e.actorId!)}::bigint[],
                  ${logins.map((e) => e.ip!)}::inet[], ${logins.map((e) => e.occurredAt.toISOString())}::timestamptz[])
             as l(id, actor, ip, at)
      join users u on u.id = l.actor and u.role in ('admin', 'owner'))
    select a.id::text as id
    from admin_logins a
    left join lateral (
      select 1 as seen from audit_logs p
      where p.action = 'auth.login' and p.actor_id = a.actor and p.ip = a.ip
        and p.occurred_at >= a.at - make_interval(secs => ${t.newIpLookbackMs / 1000})
        and (p.occurred_at < a.at or (p.occurred_at = a.at and p.id < a.id))
      limit 1) p on true
    where p.seen is null`
  return new Set(rows.map((r) => r.id))
}

/** Logins of admins/owners from an IP they did not log in from in the look-back before, as findings. */
function adminNewIp(
  events: readonly AuditEvent[],
  ids: Set<string>,
  users: Map<string, User>,
  t: SecurityThresholds,
): Finding[] {
  const logins = events.filter((e) => e.action === 'auth.login' && e.ip && isAdmin(users.get(e.actorId ?? '')))
  const seen = new Set<string>()
  const findings: Finding[] = []
  for (const e of logins) {
    const u = users.get(e.actorId!)!
    // Two first logins from the same new IP in one batch are one incident.
    if (!ids.has(e.id) || seen.has(`${u.id}|${e.ip}`)) continue
    seen.add(`${u.id}|${e.ip}`)
    const days = Math.round(t.newIpLookbackMs / 86_400_000)
    findings.push({
      rule: 'admin-new-ip',
      severity: 'critical',
      subject: `${u.id}:${e.ip}`,
      dedupeKey: `security:admin-new-ip:${e.id}`,
      title: `New IP for ${u.role} ${u.email}: ${e.ip}`,
      text: `${u.role} ${u.email} logged in from ${e.ip} at ${iso(e.occurredAt)}, an IP not seen for them in the previous ${days} days.`,
      fields: { who: u.email, from: e.ip!, count: 1, window: iso(e.occurredAt) },
      at: e.occurredAt,
    })
  }
  return findings
}

/** The occurred_at range to load so every window containing one of `events` is complete. */
function bounds(events: readonly AuditEvent[], windowMs: number): [Date, Date] {
  let lo = Number.POSITIVE_INFINITY
  let hi = Number.NEGATIVE_INFINITY
  for (const e of events) {
    lo = Math.min(lo, e.occurredAt.getTime())
    hi = Math.max(hi, e.occurredAt.getTime())
  }
  return [new Date(lo - windowMs), new Date(hi + windowMs)]
}

/** A run of attempts for one subject in which some window reached the threshold. */
export interface Burst {
  subject: string
  start: Date
  end: Date
  attempts: Attempt[]
}

/**
 * Sliding-window detection per subject: a window (t - window, t] with ≥ threshold attempts that includes a new event
 * is a breach; overlapping breaches merge into one burst from its first to its last attempt.
 */
export function bursts(
  history: readonly Attempt[],
  fresh: readonly { id: string }[],
  threshold: number,
  windowMs: number,
): Burst[] {
  const isNew = new Set(fresh.map((e) => e.id))
  const bySubject = new Map<string, Attempt[]>()
  for (const a of history) {
    const list = bySubject.get(a.subject) ?? []
    list.push(a)
    bySubject.set(a.subject, list)
  }
  const out: Burst[] = []
  for (const [subject, list] of bySubject) {
    list.sort((a, b) => a.at.getTime() - b.at.getTime() || Number(BigInt(a.id) - BigInt(b.id)))
    let current: { from: number; to: number } | undefined
    let i = 0
    let lastNew = -1
    for (let j = 0; j < list.length; j++) {
      while (list[j]!.at.getTime() - list[i]!.at.getTime() >= windowMs) i++
      if (isNew.has(list[j]!.id)) lastNew = j
      if (j - i + 1 < threshold || lastNew < i) continue
      if (current && i <= current.to) current.to = j
      else {
        if (current) out.push(toBurst(subject, list, current))
        current = { from: i, to: j }
      }
    }
    if (current) out.push(toBurst(subject, list, current))
  }
  return out
}

function toBurst(subject: string, list: Attempt[], range: { from: number; to: number }): Burst {
  const attempts = list.slice(range.from, range.to + 1)
  return { subject, start: attempts[0]!.at, end: attempts[attempts.length - 1]!.at, attempts }
}
