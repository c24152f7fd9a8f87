import { alertsPerDay } from '@admin-jobs/sdk/platform'
import type { Sql } from 'postgres'
import { securityAlertsJob } from './daily.ts'
import type { Metric, ReportDocument } from './document.ts'
import { addDays, type Bounds, boundsOf, describePeriod, previousPeriod } from './period.ts'

const series = [
  'logins',
  'activeUsers',
  'newUsers',
  'failedLogins',
  'roleChanges',
  'exports',
  'securityAlerts',
] as const
type SeriesName = (typeof series)[number]
type DayFigures = Record<SeriesName, number> & { day: string }

const labels: Record<SeriesName, string> = {
  logins: 'Logins',
  activeUsers: 'Unique active users',
  newUsers: 'New users',
  failedLogins: 'Failed logins',
  roleChanges: 'Role changes',
  exports: 'Exports',
  securityAlerts: 'Security alerts raised',
}

const keys: Record<SeriesName, string> = {
  logins: 'logins',
  activeUsers: 'active_users',
  newUsers: 'new_users',
  failedLogins: 'failed_logins',
  roleChanges: 'role_changes',
  exports: 'exports',
  securityAlerts: 'security_alerts',
}

/**
 * Daily figures and week totals for [from, to) split at `split`: one scan of audit_logs grouped by local day, with
 * grouping sets giving distinct actors per week (a week's active users is not the sum of its days).
 */
async function activityByDay(sql: Sql, from: Date, split: Date, to: Date, timezone: string) {
  const rows = await sql<
    {
      current: boolean
      day: string | null
      logins: number
      activeUsers: number
      failedLogins: number
      roleChanges: number
      exports: number
    }[]
  >`
    select occurred_at >= ${split} as current, (occurred_at at time zone ${timezone})::date::text as day,
      count(*) filter (where action = 'auth.login')::int as logins,
      count(distinct actor_id)::int as "activeUsers",
      count(*) filter (where action = 'auth.login_failed')::int as "failedLogins",
      count(*) filter (where action = 'user.role_changed')::int as "roleChanges",
      count(*) filter (where action = 'data.export')::int as exports
    from audit_logs where occurred_at >= ${from} and occurred_at < ${to}
    group by grouping sets ((1, 2), (1))`
  return rows
}

/** Builds the weekly analytics report of `bounds` (Monday to Sunday) with week-over-week changes. */
export async function buildWeeklyReport(sql: Sql, bounds: Bounds): Promise<ReportDocument> {
  const { from, to, timezone } = bounds
  const previous = await boundsOf(sql, previousPeriod(bounds))
  const [activity, users, alerts, admins, hours] = await Promise.all([
    activityByDay(sql, previous.from, from, to, timezone),
    sql<{ day: string; n: number }[]>`
      select (created_at at time zone ${timezone})::date::text as day, count(*)::int as n from users
      where created_at >= ${previous.from} and created_at < ${to} group by 1`,
    alertsPerDay(sql, { from: previous.from, to, timezone, job: securityAlertsJob }),
    sql<{ id: string; email: string; role: string; events: number; logins: number }[]>`
      with t as (
        select actor_id, count(*)::int as events, count(*) filter (where action = 'auth.login')::int as logins
        from audit_logs where occurred_at >= ${from} and occurred_at < ${to} and actor_id is not null
        group by actor_id
      )
      select u.id::text as id, u.email, u.role, t.events, t.logins from t join users u on u.id = t.actor_id
      where u.role in ('admin', 'owner') order by t.events desc, u.email limit 10`,
    sql<{ hour: number; events: number }[]>`
      select extract(hour from occurred_at at time zone ${timezone})::int as hour, count(*)::int as events
      from audit_logs where occurred_at >= ${from} and occurred_at < ${to}
      group by 1 order by events desc, hour`,
  ])

  const days = (start: string) => Array.from({ length: 7 }, (_, i) => addDays(start, i))
  const figuresOf = (day: string): DayFigures => {
    const a = activity.find((r) => r.day === day)
    return {
      day,
      logins: a?.logins ?? 0,
      activeUsers: a?.activeUsers ?? 0,
      newUsers: users.find((r) => r.day === day)?.n ?? 0,
      failedLogins: a?.failedLogins ?? 0,
      roleChanges: a?.roleChanges ?? 0,
      exports: a?.exports ?? 0,
      securityAlerts: alerts.find((r) => r.day === day)?.n ?? 0,
    }
  }
  const thisWeek = days(bounds.start).map(figuresOf)
  const lastWeek = days(previous.start).map(figuresOf)
  const total = (week: DayFigures[], current: boolean): Record<SeriesName, number> => {
    const sums = Object.fromEntries(series.map((s) => [s, week.reduce((n, d) => n + d[s], 0)])) as Record<
      SeriesName,
      number
    >
    sums.activeUsers = activity.find((r) => r.day === null && r.current === current)?.activeUsers ?? 0
    return sums
  }
  const totals = total(thisWeek, true)
  const previousTotals = total(lastWeek, false)
  const headline: Metric[] = series.map((s) => ({
    key: keys[s],
    label: labels[s],
    value: totals[s],
    previous: previousTotals[s],
  }))
  const weekday = (day: string) =>
    new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', weekday: 'short', day: 'numeric' }).format(
      new Date(`${day}T00:00:00Z`),
    )
  const busiest = hours.slice(0, 5)
  return {
    title: 'Weekly analytics report',
    bounds,
    periodLabel: describePeriod(bounds),
    headline,
    chart: {
      title: 'Logins per day',
      labels: thisWeek.map((d) => weekday(d.day)),
      series: [
        { name: 'Logins', values: thisWeek.map((d) => d.logins) },
        { name: 'Active users', values: thisWeek.map((d) => d.activeUsers), color: '#16a34a' },
        { name: 'Failed logins', values: thisWeek.map((d) => d.failedLogins), type: 'line', color: '#dc2626' },
      ],
    },
    sections: [
      {
        title: 'Per day',
        table: {
          columns: ['Day', ...series.map((s) => labels[s])],
          rows: thisWeek.map((d) => [d.day, ...series.map((s) => d[s])]),
        },
        empty: 'No days.',
      },
      {
        title: 'Most active admins',
        table: {
          columns: ['Admin', 'Role', 'Events', 'Logins'],
          rows: admins.map((a) => [a.email, a.role, a.events, a.logins]),
        },
        empty: 'No admin activity.',
      },
      {
        title: 'Busiest hours',
        note: `Local hours in ${timezone}.`,
        table: {
          columns: ['Hour', 'Events'],
          rows: busiest.map((h) => [`${String(h.hour).padStart(2, '0')}:00`, h.events]),
        },
        empty: 'No activity.',
      },
    ],
    data: {
      totals,
      previousTotals,
      previousPeriod: previous.key,
      days: thisWeek,
      previousDays: lastWeek,
      mostActiveAdmins: admins,
      busiestHours: busiest,
      eventsByHour: Array.from({ length: 24 }, (_, h) => hours.find((r) => r.hour === h)?.events ?? 0),
    },
  }
}
