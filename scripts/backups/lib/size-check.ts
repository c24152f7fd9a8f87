import { type JobContext, median } from '@admin-jobs/sdk'

/** True when a dump is less than half the median size of the previous ones (a sign of lost data). */
export function isSuspiciouslySmall(sizeBytes: number, previous: readonly number[]): boolean {
  const m = median(previous)
  return m !== undefined && sizeBytes < m / 2
}

/** The dedupe key of a database's "dump much smaller than usual" warning. */
export function sizeAlertKey(database: string): string {
  return `backups/database:small-dump:${database}`
}

/**
 * Compares a new dump with the median size of the last 7 good dumps of the same database: warns (alert, deduplicated)
 * when it is less than half of it, and resolves that warning once a dump is back to normal.
 */
export async function checkDumpSize(
  ctx: Pick<JobContext<unknown>, 'sql' | 'log' | 'alert' | 'resolveAlert'>,
  dump: { database: string; backupId: string; sizeBytes: number },
): Promise<{ medianBytes: number | undefined; small: boolean }> {
  const rows = await ctx.sql<{ size_bytes: string }[]>`
    select size_bytes from jobs.backups
    where database = ${dump.database} and id <> ${dump.backupId} and status in ('created', 'verified')
      and size_bytes is not null
    order by taken_at desc, id desc limit 7`
  const previous = rows.map((r) => Number(r.size_bytes))
  const medianBytes = median(previous)
  const small = isSuspiciouslySmall(dump.sizeBytes, previous)
  if (small) {
    ctx.log.warn('the dump is less than half the median size of the last dumps', {
      bytes: dump.sizeBytes,
      medianBytes,
    })
    await ctx.alert({
      severity: 'warning',
      title: `Backup of ${dump.database} is much smaller than usual`,
      text: `The dump is ${dump.sizeBytes} bytes, less than half the median (${medianBytes} bytes) of the last ${previous.length}: data may have been lost.`,
      fields: { database: dump.database, bytes: dump.sizeBytes, 'median bytes': medianBytes },
      dedupeKey: sizeAlertKey(dump.database),
    })
  } else {
    await ctx.resolveAlert(sizeAlertKey(dump.database), {
      title: `Backup of ${dump.database} is back to its usual size`,
    })
  }
  return { medianBytes, small }
}
