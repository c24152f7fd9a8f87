/** How many backups to keep per period: the newest of each of the last `daily` days, `weekly` ISO weeks, `monthly` months. Default 7/4/12. */
export interface RetentionPolicy {
  daily: number
  weekly: number
  monthly: number
}

/** The default retention: 7 daily, 4 weekly, 12 monthly. */
export const defaultRetention: RetentionPolicy = Object.freeze({ daily: 7, weekly: 4, monthly: 12 })

/** One backup file as retention sees it; `failed` marks a dump whose verification failed. */
export interface RetentionItem {
  name: string
  takenAt: Date
  failed?: boolean
}

/** Names a backup file: `<db>-<UTC timestamp>.dump`, e.g. `admin-20261128T020000Z.dump`. */
export function backupFileName(database: string, takenAt: Date): string {
  const stamp = takenAt
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '')
  return `${database.replace(/[^\w.-]/g, '_')}-${stamp}.dump`
}

/** Parses a backup file name back into its database and time; undefined for any other file. */
export function parseBackupFileName(name: string): { database: string; takenAt: Date } | undefined {
  const match = /^(.+)-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z\.dump$/.exec(name)
  if (!match) return undefined
  const [, database, y, mo, d, h, mi, s] = match as unknown as string[]
  const takenAt = new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}Z`)
  return Number.isNaN(takenAt.getTime()) ? undefined : { database: database!, takenAt }
}

const dayKey = (d: Date) => d.toISOString().slice(0, 10)
const monthKey = (d: Date) => d.toISOString().slice(0, 7)

/** The ISO 8601 week of a UTC date, as `2026-W53`. */
export function isoWeekKey(date: Date): string {
  const d = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()))
  const weekday = d.getUTCDay() || 7
  d.setUTCDate(d.getUTCDate() + 4 - weekday) // the Thursday of this week decides its year
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1)
  const week = Math.ceil(((d.getTime() - yearStart) / 86_400_000 + 1) / 7)
  return `${d.getUTCFullYear()}-W${String(week).padStart(2, '0')}`
}

/**
 * Splits backups into those to keep and those to prune (pure). For each period kind it walks the good backups newest
 * first and keeps the newest one of each of the last N periods that have a backup; the newest good backup is always
 * kept. Failed dumps fill no slot: they are kept while within `daily` days of the newest backup (for investigation).
 */
export function selectRetained<T extends RetentionItem>(
  items: readonly T[],
  policy: RetentionPolicy = defaultRetention,
): { keep: T[]; prune: T[] } {
  const sorted = [...items].sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime() || (a.name < b.name ? 1 : -1))
  const good = sorted.filter((i) => !i.failed)
  const keep = new Set<T>()
  if (good[0]) keep.add(good[0])
  for (const [count, key] of [
    [policy.daily, dayKey],
    [policy.weekly, isoWeekKey],
    [policy.monthly, monthKey],
  ] as const) {
    const seen = new Set<string>()
    for (const item of good) {
      if (seen.size >= count) break
      const k = key(item.takenAt)
      if (seen.has(k)) continue
      seen.add(k)
      keep.add(item)
    }
  }
  const newest = sorted[0]?.takenAt.getTime() ?? 0
  for (const item of sorted) {
    if (item.failed && item.takenAt.getTime() > newest - policy.daily * 86_400_000) keep.add(item)
  }
  return { keep: sorted.filter((i) => keep.has(i)), prune: sorted.filter((i) => !keep.has(i)) }
}
