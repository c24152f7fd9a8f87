import type { Sql } from 'postgres'

/** Backups in a period and the last verified restore, read defensively from whatever backup tables exist. */
export interface BackupSummary {
  /** False when no backup table exists yet (the backups job has not been installed or never migrated). */
  available: boolean
  /** The table the figures come from, e.g. `jobs.backups`. */
  source?: string
  taken: number
  failed: number
  lastBackupAt: string | null
  lastVerifiedRestoreAt: string | null
}

const backupTables = ['jobs.backups', 'jobs.backup_runs']
const verificationTables = ['jobs.backup_verifications', 'jobs.restore_verifications', 'jobs.restore_checks']
const timeFields = ['finished_at', 'completed_at', 'created_at', 'started_at', 'taken_at', 'verified_at']
const verifiedFields = ['verified_at', 'restore_verified_at', 'last_verified_at', 'restored_at']
const failedStatuses = new Set(['failed', 'error', 'timed_out', 'cancelled', 'corrupt', 'invalid'])
const okStatuses = new Set(['succeeded', 'success', 'ok', 'passed', 'verified', 'completed', 'complete', 'done'])

async function existing(sql: Sql, names: readonly string[]): Promise<string | undefined> {
  for (const name of names) {
    const [row] = await sql<{ found: string | null }[]>`select to_regclass(${name})::text as found`
    if (row?.found) return name
  }
  return undefined
}

const timeOf = (row: Record<string, unknown>, fields: readonly string[]) => {
  for (const f of fields) {
    const v = row[f]
    if (typeof v === 'string' && !Number.isNaN(Date.parse(v))) return new Date(v)
  }
  return undefined
}

const statusOf = (row: Record<string, unknown>) =>
  typeof row.status === 'string'
    ? row.status.toLowerCase()
    : typeof row.ok === 'boolean'
      ? row.ok
        ? 'ok'
        : 'failed'
      : undefined

/**
 * Reads backups taken in [from, to) and the last verified restore before `to`. The tables belong to the backups job
 * (a later migration); rows are read as JSON so that column names found at run time decide, not this file.
 */
export async function summariseBackups(sql: Sql, from: Date, to: Date): Promise<BackupSummary> {
  const table = await existing(sql, backupTables)
  if (!table) return { available: false, taken: 0, failed: 0, lastBackupAt: null, lastVerifiedRestoreAt: null }
  const rows = (
    await sql<{ row: Record<string, unknown> }[]>`select to_jsonb(b) as row from ${sql(table)} b limit 100000`
  ).map((r) => r.row)
  let taken = 0
  let failed = 0
  let lastBackup: Date | undefined
  let lastVerified: Date | undefined
  for (const row of rows) {
    const at = timeOf(row, timeFields)
    if (!at || at >= to) continue
    const status = statusOf(row)
    const ok = status === undefined || okStatuses.has(status)
    if (at >= from) {
      if (status && failedStatuses.has(status)) failed++
      else if (ok) taken++
    }
    if (ok && (!lastBackup || at > lastBackup)) lastBackup = at
    const verified = timeOf(row, verifiedFields)
    if (verified && verified < to && (!lastVerified || verified > lastVerified)) lastVerified = verified
  }
  const verifications = await existing(sql, verificationTables)
  if (verifications) {
    const checks = await sql<{ row: Record<string, unknown> }[]>`
      select to_jsonb(v) as row from ${sql(verifications)} v limit 100000`
    for (const { row } of checks) {
      const status = statusOf(row)
      if (status !== undefined && !okStatuses.has(status)) continue
      const at = timeOf(row, [...verifiedFields, ...timeFields])
      if (at && at < to && (!lastVerified || at > lastVerified)) lastVerified = at
    }
  }
  return {
    available: true,
    source: verifications ? `${table}, ${verifications}` : table,
    taken,
    failed,
    lastBackupAt: lastBackup?.toISOString() ?? null,
    lastVerifiedRestoreAt: lastVerified?.toISOString() ?? null,
  }
}
