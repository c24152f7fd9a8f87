import fs from 'node:fs/promises'
import path from 'node:path'
import type { Sql } from 'postgres'
import { checksumFileOf } from './dump.ts'
import { parseBackupFileName, type RetentionItem, type RetentionPolicy, selectRetained } from './retention.ts'

/** What pruneBackups kept and removed (file names). */
export interface PruneResult {
  kept: string[]
  pruned: string[]
}

/** The dumps of `database` in `dir` (files named `<database>-<UTC timestamp>.dump`), oldest first. */
export async function listBackups(dir: string, database: string): Promise<RetentionItem[]> {
  const names = await fs.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[]
    throw err
  })
  return names
    .map((name) => ({ name, parsed: parseBackupFileName(name) }))
    .filter((f) => f.parsed?.database === database)
    .map((f) => ({ name: f.name, takenAt: f.parsed!.takenAt }))
    .sort((a, b) => a.takenAt.getTime() - b.takenAt.getTime())
}

/**
 * Applies the retention policy to the dumps of `database` in `dir`: removes each pruned dump with its `.sha256` and
 * marks its jobs.backups row pruned. Dumps recorded as failing verification fill no retention slot. Other files in the
 * directory are never touched. A dry run only reports.
 */
export async function pruneBackups(options: {
  sql: Sql
  dir: string
  database: string
  policy: RetentionPolicy
  dryRun?: boolean
}): Promise<PruneResult> {
  const items = await listBackups(options.dir, options.database)
  if (items.length === 0) return { kept: [], pruned: [] }
  const failed = new Set(
    (
      await options.sql<{ file: string }[]>`
        select file from jobs.backups where status = 'verification_failed' and file in ${options.sql(items.map((i) => i.name))}`
    ).map((r) => r.file),
  )
  const { keep, prune } = selectRetained(
    items.map((i) => ({ ...i, failed: failed.has(i.name) })),
    options.policy,
  )
  if (!options.dryRun) {
    for (const item of prune) {
      const file = path.join(options.dir, item.name)
      await fs.rm(file, { force: true })
      await fs.rm(checksumFileOf(file), { force: true })
    }
    if (prune.length) {
      await options.sql`
        update jobs.backups set pruned_at = now()
        where file in ${options.sql(prune.map((p) => p.name))} and pruned_at is null`
    }
  }
  return { kept: keep.map((k) => k.name).sort(), pruned: prune.map((p) => p.name).sort() }
}
