import type { Sql } from 'postgres'
import { summariseBackups } from './backups.ts'
import type { Finding, ReportDocument } from './document.ts'
import { addDays, type Bounds, describePeriod } from './period.ts'
import { jobReliability } from './reliability.ts'

const dayMs = 86_400_000

/** Settings the monthly report needs beyond its period. */
export interface MonthlyOptions {
  /** AUDIT_LOG_RETENTION_DAYS. */
  retentionDays: number
  /** Now: slots of schedules after it are not counted as missed. */
  now: Date
  /** Days without login after which an admin is dormant (default 90). */
  dormantDays?: number
  /** Credentials expiring within this many days after the period are listed (default 30). */
  expiringDays?: number
  /** Jobs that keep running under a pause of `all` (their definitions' exemptFromPauseAll). */
  exemptFromPauseAll?: ReadonlySet<string>
}

// PostgreSQL's `infinity` and `-infinity` arrive as invalid dates: they print as `unbounded`, never throw.
const unbounded = (d: Date) => (Number.isNaN(d.getTime()) ? 'unbounded' : undefined)
const iso = (d: Date | null) => (d ? (unbounded(d) ?? d.toISOString()) : null)
const day = (d: Date | null) => (d ? (unbounded(d) ?? d.toISOString().slice(0, 10)) : null)

/** Builds the monthly compliance report of `bounds` (one calendar month), ending in a checklist of findings. */
/** Every figure the monthly report is made of, read in one pipelined round on one connection. */
async function readMonth(sql: Sql, bounds: Bounds, options: MonthlyOptions, cutoffs: { expiringBefore: Date }) {
  const { from, to, timezone } = bounds
  const { expiringBefore } = cutoffs
  // One connection, its queries pipelined, for the reason given in buildDailyReport.
  const db = await sql.reserve()
  const [perDay, admins, privilege, expired, expiring, billing, backups, oldest, reliability] = await Promise.all([
    // Logins, failed logins and role changes per local day from the (action, occurred_at) index alone: the report
    // needs no other figure of the month's rows (not even their count), so it never reads them.
    db<{ action: string; day: string; events: number }[]>`
      select action, (occurred_at at time zone ${timezone})::date::text as day, count(*)::int as events
      from audit_logs
      where action in ('auth.login', 'auth.login_failed', 'user.role_changed')
        and occurred_at >= ${from} and occurred_at < ${to}
      group by 1, 2`,
    db<{ email: string; role: string; mfa: boolean; lastLoginAt: Date | null; disabledAt: Date | null }[]>`
      select email, role, mfa_enabled as mfa,
        -- An unbounded time (±infinity) is no login time: such an admin reads as never logged in.
        case when isfinite(last_login_at) then last_login_at end as "lastLoginAt",
        disabled_at as "disabledAt"
      from users where role in ('admin', 'owner') order by role desc, email`,
    // Each action's first 500 rows in time order, straight from (action, occurred_at): a month of rows of other
    // actions is never walked past.
    db<{ occurredAt: Date; action: string; actor: string; target: string | null; change: string | null }[]>`
      select a.occurred_at as "occurredAt", a.action, coalesce(u.email, a.actor_id::text, 'system') as actor,
        coalesce(t.email, a.target_id) as target,
        case when a.action = 'user.role_changed'
             then coalesce(a.metadata->>'from', '?') || ' → ' || coalesce(a.metadata->>'to', '?') end as change
      from unnest(array['user.role_changed', 'auth.mfa_disabled']) as wanted(action)
      cross join lateral (
        select id, occurred_at, action, actor_id, target_id, metadata from audit_logs
        where action = wanted.action and occurred_at >= ${from} and occurred_at < ${to}
        order by occurred_at, id limit 500
      ) a
      left join users u on u.id = a.actor_id
      left join users t on a.target_id ~ '^\\d{1,18}$' and t.id = a.target_id::bigint
      order by a.occurred_at, a.id limit 500`,
    db<{ name: string; kind: string; owner: string | null; expiresAt: Date; total: number }[]>`
      select c.name, c.kind, coalesce(u.email, c.owner_id::text) as owner, c.expires_at as "expiresAt",
        count(*) over ()::int as total
      from credentials c left join users u on u.id = c.owner_id
      where c.expires_at < ${to} and (c.revoked_at is null or c.revoked_at >= ${to})
      order by c.expires_at, c.id limit 500`,
    db<{ name: string; kind: string; owner: string | null; expiresAt: Date; total: number }[]>`
      select c.name, c.kind, coalesce(u.email, c.owner_id::text) as owner, c.expires_at as "expiresAt",
        count(*) over ()::int as total
      from credentials c left join users u on u.id = c.owner_id
      where c.expires_at >= ${to} and c.expires_at < ${expiringBefore} and (c.revoked_at is null or c.revoked_at >= ${to})
      order by c.expires_at, c.id limit 500`,
    db<{ kind: string; customer: string; item: string; change: string; at: Date | null }[]>`
      select 'license' as kind, customer, product as item,
        case when seats_used > seats then 'over seats (' || seats_used || '/' || seats || ')'
             when status = 'expired' then 'expired'
             else 'expired (status still ' || status || ')' end as change, expires_at as at
      from licenses
      where (expires_at >= ${from} and expires_at < ${to}) or seats_used > seats
      union all
      select 'subscription', customer, plan,
        case when cancel_at_period_end and status not in ('canceled', 'expired') then 'cancels at period end'
             else status end, current_period_end
      from subscriptions
      where current_period_end >= ${from} and current_period_end < ${to}
        and (status in ('canceled', 'expired', 'past_due') or cancel_at_period_end)
      union all
      select split_part(action, '.', 1), coalesce(metadata->>'customer', target_id, ''), coalesce(target_id, ''),
        action, occurred_at
      from audit_logs
      -- Letter-only range bounds let (action, occurred_at) serve the prefix match under any collation.
      where ((action >= 'license' and action < 'licensf' and action like 'license.%')
          or (action >= 'subscription' and action < 'subscriptioo' and action like 'subscription.%'))
        and occurred_at >= ${from} and occurred_at < ${to}
      order by at nulls last, kind, customer limit 500`,
    summariseBackups(db, from, to),
    // Rows at -infinity or dated BC are set aside by cleanup/audit-logs (no month file can hold them): they are not
    // the oldest row the retention check is about, and -infinity is no date at all.
    db<{ oldest: Date | null }[]>`
      select min(occurred_at) as oldest from audit_logs where occurred_at >= '0001-01-01T00:00:00Z'`,
    jobReliability(db, from, to, options.now, options.exemptFromPauseAll),
  ]).finally(() => db.release())
  return { perDay, admins, privilege, expired, expiring, billing, backups, oldest, reliability }
}

export async function buildMonthlyReport(sql: Sql, bounds: Bounds, options: MonthlyOptions): Promise<ReportDocument> {
  const { to } = bounds
  const dormantDays = options.dormantDays ?? 90
  const expiringDays = options.expiringDays ?? 30
  const dormantBefore = new Date(to.getTime() - dormantDays * dayMs)
  const expiringBefore = new Date(to.getTime() + expiringDays * dayMs)
  const { perDay, admins, privilege, expired, expiring, billing, backups, oldest, reliability } = await readMonth(
    sql,
    bounds,
    options,
    { expiringBefore },
  )
  const figure = (action: string, day?: string) =>
    perDay.filter((r) => r.action === action && (day === undefined || r.day === day)).reduce((n, r) => n + r.events, 0)
  const counts = {
    logins: figure('auth.login'),
    failedLogins: figure('auth.login_failed'),
    roleChanges: figure('user.role_changed'),
  }

  const dormant = admins.filter((a) => !a.disabledAt && (!a.lastLoginAt || a.lastLoginAt < dormantBefore))
  const withoutMfa = admins.filter((a) => !a.disabledAt && !a.mfa)
  const oldestAt = oldest[0]?.oldest ?? null
  const oldestAgeDays = oldestAt ? Math.floor((to.getTime() - oldestAt.getTime()) / dayMs) : null
  // cleanup/audit-logs runs monthly, so rows up to a month past the retention are expected.
  const retentionOverdue = oldestAgeDays !== null && oldestAgeDays > options.retentionDays + 31
  const verifiedAgeDays = backups.lastVerifiedRestoreAt
    ? Math.floor((to.getTime() - Date.parse(backups.lastVerifiedRestoreAt)) / dayMs)
    : null

  const findings: Finding[] = []
  for (const a of withoutMfa) findings.push({ severity: 'critical', text: `Enable MFA for ${a.role} ${a.email}` })
  for (const a of dormant) {
    findings.push({
      severity: 'warning',
      text: `Review dormant ${a.role} ${a.email} (last login ${day(a.lastLoginAt) ?? 'never'})`,
    })
  }
  for (const c of expired) {
    findings.push({ severity: 'critical', text: `Revoke expired ${c.kind} "${c.name}" (expired ${day(c.expiresAt)})` })
  }
  for (const c of expiring) {
    findings.push({ severity: 'warning', text: `Rotate ${c.kind} "${c.name}" before ${day(c.expiresAt)}` })
  }
  // The list is capped; the headline counts every change.
  const roleChanges = counts.roleChanges
  if (roleChanges) findings.push({ severity: 'info', text: `Confirm ${roleChanges} privilege change(s) were approved` })
  if (!backups.available) findings.push({ severity: 'critical', text: 'No backup records: check backups/database' })
  else {
    if (backups.taken === 0) findings.push({ severity: 'critical', text: 'No successful backup taken this month' })
    if (backups.failed > 0)
      findings.push({ severity: 'warning', text: `${backups.failed} backup(s) failed this month` })
    if (verifiedAgeDays === null || verifiedAgeDays > 31) {
      findings.push({ severity: 'warning', text: 'No restore verified in the last 31 days: run a restore test' })
    }
  }
  if (retentionOverdue) {
    findings.push({
      severity: 'warning',
      text: `Oldest hot audit row is ${oldestAgeDays} days old (retention ${options.retentionDays}): check cleanup/audit-logs`,
    })
  }
  for (const j of reliability) {
    if (j.failureRate >= 10)
      findings.push({ severity: 'warning', text: `${j.job} failed ${j.failureRate}% of its runs` })
    const missedShare = j.expected ? j.missed / j.expected : 0
    if (j.missed > 0 && (j.expected <= 31 || missedShare > 0.05)) {
      findings.push({ severity: 'warning', text: `${j.job} missed ${j.missed} of ${j.expected} expected runs` })
    }
  }

  const days = Array.from({ length: Math.round((Date.parse(bounds.end) - Date.parse(bounds.start)) / dayMs) }, (_, i) =>
    addDays(bounds.start, i),
  )
  const when = (d: Date | null) => (d ? (unbounded(d) ?? d.toISOString().slice(0, 16).replace('T', ' ')) : 'never')
  return {
    title: 'Monthly compliance report',
    bounds,
    periodLabel: describePeriod(bounds),
    headline: [
      {
        key: 'admins',
        label: 'Admin and owner accounts',
        value: admins.length,
        note: 'users with role admin or owner now, disabled ones included',
      },
      {
        key: 'admins_without_mfa',
        label: 'Admins without MFA',
        value: withoutMfa.length,
        note: 'of those, not disabled and mfa_enabled false',
      },
      {
        key: 'dormant_admins',
        label: `Dormant admins (no login in ${dormantDays} days)`,
        value: dormant.length,
        note: `not disabled, last login before ${day(dormantBefore)} (${dormantDays} days before the period end) or never`,
      },
      {
        key: 'privilege_changes',
        label: 'Privilege changes',
        value: roleChanges,
        note: 'user.role_changed audit events in the period',
      },
      {
        key: 'expired_credentials',
        label: 'Expired credentials not revoked',
        value: expired[0]?.total ?? 0,
        note: 'credentials that expired before the period end and were not revoked by then',
      },
      {
        key: 'expiring_credentials',
        label: `Credentials expiring within ${expiringDays} days`,
        value: expiring.length,
        note: `not revoked, expiring in the ${expiringDays} days after the period end`,
      },
      {
        key: 'backups_taken',
        label: 'Backups taken',
        value: backups.taken,
        note: backups.available ? `successful backups in the period (${backups.source})` : 'no backup table exists',
      },
      { key: 'logins', label: 'Logins', value: counts.logins, note: 'auth.login audit events in the period' },
      {
        key: 'failed_logins',
        label: 'Failed logins',
        value: counts.failedLogins,
        note: 'auth.login_failed audit events in the period',
      },
      {
        key: 'missed_runs',
        label: 'Missed scheduled runs',
        value: reliability.reduce((n, j) => n + j.missed, 0),
        note: 'fire times a job was expected to serve with no run started before its next one (see Job reliability)',
      },
      { key: 'findings', label: 'Findings', value: findings.length, note: 'items in the checklist below' },
    ],
    chart: {
      title: 'Logins per day',
      labels: days.map((d) => d.slice(8)),
      series: [
        { name: 'Logins', values: days.map((d) => figure('auth.login', d)) },
        {
          name: 'Failed logins',
          values: days.map((d) => figure('auth.login_failed', d)),
          type: 'line',
          color: '#dc2626',
        },
      ],
    },
    findings,
    sections: [
      {
        title: 'Admin and owner accounts',
        table: {
          columns: ['Account', 'Role', 'MFA', 'Last login (UTC)', 'Status'],
          rows: admins.map((a) => [
            a.email,
            a.role,
            a.mfa ? 'yes' : 'NO',
            when(a.lastLoginAt),
            a.disabledAt ? 'disabled' : dormant.includes(a) ? 'dormant' : 'active',
          ]),
        },
        empty: 'No admin accounts.',
      },
      {
        title: 'Privilege and MFA changes',
        note: privilege.length === 500 ? 'Showing the first 500 changes.' : undefined,
        table: {
          columns: ['Time (UTC)', 'Action', 'By', 'User', 'Change'],
          rows: privilege.map((p) => [when(p.occurredAt), p.action, p.actor, p.target, p.change]),
        },
        empty: 'No privilege changes.',
      },
      {
        title: 'Expired credentials not revoked',
        table: {
          columns: ['Credential', 'Kind', 'Owner', 'Expired'],
          rows: expired.map((c) => [c.name, c.kind, c.owner, day(c.expiresAt)]),
        },
        empty: 'None.',
      },
      {
        title: `Credentials expiring within ${expiringDays} days`,
        table: {
          columns: ['Credential', 'Kind', 'Owner', 'Expires'],
          rows: expiring.map((c) => [c.name, c.kind, c.owner, day(c.expiresAt)]),
        },
        empty: 'None.',
      },
      {
        title: 'License and subscription changes',
        table: {
          columns: ['Kind', 'Customer', 'Product / plan', 'Change', 'Date'],
          rows: billing.map((b) => [b.kind, b.customer, b.item, b.change, day(b.at)]),
        },
        empty: 'No license or subscription changes.',
      },
      {
        title: 'Backups',
        note: backups.available
          ? `${backups.taken} backup(s) taken, ${backups.failed} failed; last backup ${backups.lastBackupAt ?? 'never'}; last verified restore ${backups.lastVerifiedRestoreAt ?? 'never'}.`
          : 'No backup records.',
        empty: 'No backup records.',
      },
      {
        title: 'Audit-log retention',
        note: oldestAt
          ? `Oldest hot row ${oldestAt.toISOString()} (${oldestAgeDays} days before the period end); retention ${options.retentionDays} days: ${retentionOverdue ? 'OVERDUE' : 'within retention'}.`
          : `No hot audit rows; retention ${options.retentionDays} days.`,
        empty: 'No hot audit rows.',
      },
      {
        title: 'Job reliability',
        note: [
          'Runs: runs started in the period (dry runs left out); Failed: of them failed or timed out;',
          'Failure rate: failed ÷ runs not skipped.',
          "Expected: the schedule's fire times in the period up to now, counted only from when the job existed",
          "(its first run's fire time, or when the watchdog first saw its workflow, whichever is earlier)",
          'and not while a pause held it (Paused counts those left out).',
          'Missed: expected fire times with no run started before the next one.',
        ].join(' '),
        table: {
          columns: ['Job', 'Runs', 'Failed', 'Failure rate %', 'Expected from (UTC)', 'Expected', 'Paused', 'Missed'],
          rows: reliability.map((j) => [
            j.job,
            j.runs,
            j.failed,
            j.failureRate,
            j.expectedFrom ? j.expectedFrom.slice(0, 16).replace('T', ' ') : 'not yet deployed',
            j.expected,
            j.paused,
            j.missed,
          ]),
        },
        empty: 'No jobs.',
      },
    ],
    data: {
      logins: counts.logins,
      failedLogins: counts.failedLogins,
      admins: admins.map((a) => ({ ...a, lastLoginAt: iso(a.lastLoginAt), disabledAt: iso(a.disabledAt) })),
      dormantAdmins: dormant.map((a) => a.email),
      adminsWithoutMfa: withoutMfa.map((a) => a.email),
      privilegeChanges: privilege.map((p) => ({ ...p, occurredAt: iso(p.occurredAt) })),
      expiredCredentials: expired.map(({ total: _, ...c }) => ({ ...c, expiresAt: iso(c.expiresAt) })),
      expiringCredentials: expiring.map(({ total: _, ...c }) => ({ ...c, expiresAt: iso(c.expiresAt) })),
      billingChanges: billing.map((b) => ({ ...b, at: iso(b.at) })),
      backups,
      retention: { days: options.retentionDays, oldestHotRow: iso(oldestAt), oldestAgeDays, overdue: retentionOverdue },
      jobs: reliability,
      findings,
    },
  }
}
