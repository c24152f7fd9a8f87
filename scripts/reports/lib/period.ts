import { ConfigError } from '@admin-jobs/sdk'
import type { Sql } from 'postgres'

/** The three report kinds (jobs reports/daily, reports/weekly, reports/monthly). */
export type ReportKind = 'daily' | 'weekly' | 'monthly'

/** A report period: local calendar dates [start, end) in `timezone`, and its key in jobs.reports. */
export interface Period {
  kind: ReportKind
  /** `2026-11-27` (daily), `2026-11-16` (weekly: its Monday), `2026-11` (monthly). */
  key: string
  /** First local date of the period (YYYY-MM-DD). */
  start: string
  /** First local date after the period (YYYY-MM-DD). */
  end: string
  timezone: string
}

/** A period with its instants: local midnights of `start` and `end` in its timezone. */
export interface Bounds extends Period {
  from: Date
  to: Date
}

/** Throws ConfigError naming `variable` unless `timezone` is an IANA zone Intl knows. Returns the canonical name. */
export function validateTimezone(timezone: string, variable = 'REPORT_TIMEZONE'): string {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: timezone }).resolvedOptions().timeZone
  } catch (err) {
    throw new ConfigError(`${variable} is not a known IANA time zone (got "${timezone}")`, { variable, cause: err })
  }
}

/** The local calendar date (YYYY-MM-DD) of `at` in `timezone`. */
export function localDate(at: Date, timezone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit' })
    .format(at)
    .slice(0, 10)
}

/** `date` (YYYY-MM-DD) plus `days` calendar days. */
export function addDays(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`)
  d.setUTCDate(d.getUTCDate() + days)
  return d.toISOString().slice(0, 10)
}

/** The first day of the month `months` away from the month of `date`. */
export function addMonths(date: string, months: number): string {
  const d = new Date(`${date.slice(0, 7)}-01T00:00:00Z`)
  d.setUTCMonth(d.getUTCMonth() + months)
  return d.toISOString().slice(0, 10)
}

function isoWeekday(date: string): number {
  return new Date(`${date}T00:00:00Z`).getUTCDay() || 7
}

function isRealDate(date: string): boolean {
  const d = new Date(`${date}T00:00:00Z`)
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === date
}

/** The period of `kind` that contains the local date `date`. */
export function periodContaining(kind: ReportKind, date: string, timezone: string): Period {
  if (kind === 'daily') return { kind, key: date, start: date, end: addDays(date, 1), timezone }
  if (kind === 'weekly') {
    const monday = addDays(date, 1 - isoWeekday(date))
    return { kind, key: monday, start: monday, end: addDays(monday, 7), timezone }
  }
  const first = `${date.slice(0, 7)}-01`
  return { kind, key: date.slice(0, 7), start: first, end: addMonths(first, 1), timezone }
}

/** Parses a requested period (`--period`: YYYY-MM-DD, or YYYY-MM for monthly) into the period containing it; bad input → ConfigError. */
export function parsePeriod(kind: ReportKind, requested: string, timezone: string): Period {
  const pattern = kind === 'monthly' ? /^\d{4}-\d{2}(-\d{2})?$/ : /^\d{4}-\d{2}-\d{2}$/
  const date = requested.length === 7 ? `${requested}-01` : requested
  if (!pattern.test(requested) || !isRealDate(date)) {
    const format = kind === 'monthly' ? 'YYYY-MM' : 'YYYY-MM-DD'
    throw new ConfigError(`--period (or REPORT_PERIOD) must be ${format} (got "${requested}")`, {
      variable: 'REPORT_PERIOD',
    })
  }
  return periodContaining(kind, date, timezone)
}

/**
 * The period to report: `requested` (see parsePeriod; a weekly date picks its Monday–Sunday week), or else the last
 * complete period before `now` in `timezone`. A period that has not ended yet → ConfigError.
 */
export function resolvePeriod(kind: ReportKind, options: { now: Date; timezone: string; requested?: string }): Period {
  const { now, timezone, requested } = options
  if (requested !== undefined) {
    const period = parsePeriod(kind, requested, timezone)
    // A period still under way would be sent half-counted, and then never again.
    if (period.end > localDate(now, timezone)) {
      throw new ConfigError(`--period (or REPORT_PERIOD) ${requested} has not ended yet`, { variable: 'REPORT_PERIOD' })
    }
    return period
  }
  const current = periodContaining(kind, localDate(now, timezone), timezone)
  return periodContaining(kind, addDays(current.start, -1), timezone)
}

/** The period just before `period` (previous day, week or month). */
export function previousPeriod(period: Period): Period {
  return periodContaining(period.kind, addDays(period.start, -1), period.timezone)
}

/** Resolves the period's local midnights to instants in the database (time zone rules as PostgreSQL knows them). */
export async function boundsOf(sql: Sql, period: Period): Promise<Bounds> {
  const [row] = await sql<{ from: Date; to: Date }[]>`
    select (${period.start}::date::timestamp at time zone ${period.timezone}) as "from",
           (${period.end}::date::timestamp at time zone ${period.timezone}) as "to"`
  return { ...period, from: row!.from, to: row!.to }
}

/** A human label: `Fri 27 Nov 2026`, `16–22 Nov 2026`, `November 2026`. */
export function describePeriod(period: Period): string {
  const day = (date: string, options: Intl.DateTimeFormatOptions) =>
    new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', ...options }).format(new Date(`${date}T00:00:00Z`))
  if (period.kind === 'daily')
    return day(period.start, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' })
  if (period.kind === 'weekly') {
    const last = addDays(period.end, -1)
    return `${day(period.start, { day: 'numeric', month: 'short' })} – ${day(last, { day: 'numeric', month: 'short', year: 'numeric' })}`
  }
  return day(period.start, { month: 'long', year: 'numeric' })
}
