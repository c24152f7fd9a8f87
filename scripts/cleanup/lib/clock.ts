import { ConfigError, formatMs, NonRetryableError } from '@admin-jobs/sdk'
import type { Sql } from 'postgres'

/** How far the runner's clock may disagree with the database's before cleanup refuses to remove anything. */
export const maxClockSkewMs = 5 * 60_000

/** The instant a cleanup measures its cutoffs from, and where it came from. */
export interface CleanupClock {
  readonly at: Date
  readonly source: 'database' | 'pinned'
  /** The runner's clock minus the database's, in ms (0 when pinned). */
  readonly skewMs: number
}

/**
 * The instant cleanup cutoffs are measured from: the database's clock, the one that wrote `expires_at`, `revoked_at`
 * and `occurred_at`. A runner whose clock disagrees with it by more than five minutes means one of the two is wrong,
 * and the run refuses (exit 1) before removing anything, saying which clocks to check. A clock pinned by
 * ADMIN_JOBS_NOW (tests, replays of a past day) is taken as given.
 */
export async function cleanupClock(sql: Sql, options: { now: () => Date; pinned: boolean }): Promise<CleanupClock> {
  if (options.pinned) return { at: options.now(), source: 'pinned', skewMs: 0 }
  const before = options.now().getTime()
  const [row] = await sql<{ at: Date }[]>`select clock_timestamp() as at`
  const after = options.now().getTime()
  const database = row!.at
  // The database read its clock somewhere between `before` and `after`: compare with the midpoint.
  const skewMs = Math.round((before + after) / 2 - database.getTime())
  if (Math.abs(skewMs) > maxClockSkewMs) {
    const ahead = skewMs > 0 ? "the runner's clock is ahead" : "the runner's clock is behind"
    throw new NonRetryableError(
      `clock check: the runner's clock (${new Date(before).toISOString()}) and the database's ` +
        `(${database.toISOString()}) differ by ${formatMs(Math.abs(skewMs))} (${ahead}; at most ` +
        `${formatMs(maxClockSkewMs)} is accepted). Expiry is measured by the database's clock, so check time ` +
        'synchronisation (NTP) on the runner and on the database server, then run again. Nothing was removed.',
    )
  }
  return { at: database, source: 'database', skewMs }
}

/** The shortest hot retention of audit_logs: the reports and security alerts read the last week from it. */
export const minRetentionDays = 7

/**
 * AUDIT_LOG_RETENTION_DAYS as cleanup/audit-logs uses it: a retention shorter than a week would archive rows the daily
 * and weekly reports and the security alerts still read from audit_logs, so it is refused (exit 2) before anything
 * connects. The variable itself accepts 1–36500, as the other jobs only read it.
 */
export function minimumRetentionDays(days: number): number {
  if (days < minRetentionDays) {
    throw new ConfigError(
      `AUDIT_LOG_RETENTION_DAYS=${days} would archive audit rows from the last ${minRetentionDays} days, which the ` +
        `daily and weekly reports and the security alerts read from audit_logs; set it to ${minRetentionDays} or more ` +
        '(default 90)',
      { variable: 'AUDIT_LOG_RETENTION_DAYS' },
    )
  }
  return days
}
