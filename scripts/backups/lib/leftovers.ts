import fs from 'node:fs/promises'
import path from 'node:path'
import { isAtomicTemp } from '@admin-jobs/sdk'
import type { Sql } from 'postgres'
import { parseBackupFileName } from './retention.ts'

/** The suffix of a dump still being written: `<db>-<UTC timestamp>.dump.partial`. */
export const partialSuffix = '.partial'

/**
 * The dump a file in BACKUP_DIR is a leftover of, or undefined: `<dump>.partial` (pg_dump's output being written), or
 * an atomic write's temp file of `<dump>` or `<dump>.sha256` (`….tmp-<pid>-<n>`).
 */
export function leftoverOf(name: string): string | undefined {
  const base = name.endsWith(partialSuffix)
    ? name.slice(0, -partialSuffix.length)
    : isAtomicTemp(name)
      ? name.replace(/\.tmp-\d+-\d+$/, '').replace(/\.sha256$/, '')
      : undefined
  return base !== undefined && parseBackupFileName(base) ? base : undefined
}

/** What a killed run left behind, and what was done about it. */
export interface Leftovers {
  /** jobs.backups rows closed as failed (ids). */
  closed: number[]
  /** Partial dump files removed (names), and their total size. */
  removed: string[]
  removedBytes: number
}

/**
 * Cleans up after runs that died mid-dump (SIGKILL, a lost runner): their jobs.backups rows still say `running`, and
 * their `.dump.partial` files (and any temp file of the checksum's atomic write) stay in `dir` forever (a rename only
 * ever publishes a complete file).
 *
 * Call it only while holding the job's lock, before this run's own dump: the runner takes that lock and has refused
 * to start while any other run of the job is alive, so every `running` row is a dead run's, and a partial file whose
 * row is closed has no writer. A partial file with no row at all (another deployment sharing the directory, or a row
 * lost with a restored database) is removed only once nothing has written to it for `idleMs` (the job's timeout: no
 * live pg_dump is silent for longer). A dry run holds no lock, so it only lists what it finds (every `running` row and
 * every partial file: it cannot tell a dead run's from a live one's) and touches nothing.
 */
export async function cleanLeftovers(options: {
  sql: Sql
  dir: string
  runId: number
  idleMs: number
  dryRun?: boolean
  now?: Date
}): Promise<Leftovers> {
  const { sql, dir, runId } = options
  const note = `closed by run ${runId}: the run writing this dump ended without finishing it (killed?)`
  const closed = options.dryRun
    ? await sql<
        { id: string }[]
      >`select id from jobs.backups where status = 'running' and run_id is distinct from ${runId}`
    : await sql<{ id: string }[]>`
        update jobs.backups set status = 'failed', finished_at = coalesce(finished_at, now()), error = coalesce(error, ${note})
        where status = 'running' and run_id is distinct from ${runId}
        returning id`

  const names = await fs.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[]
    throw err
  })
  const leftovers = names.map((name) => ({ name, dump: leftoverOf(name) })).filter((l) => l.dump !== undefined)
  const removed: string[] = []
  let removedBytes = 0
  if (leftovers.length) {
    const dumps = [...new Set(leftovers.map((l) => l.dump!))]
    const rows = await sql<{ file: string; running: boolean }[]>`
      select file, bool_or(status = 'running') as running from jobs.backups where file in ${sql(dumps)} group by file`
    const known = new Map(rows.map((r) => [r.file, r.running]))
    const now = (options.now ?? new Date()).getTime()
    for (const { name, dump } of leftovers) {
      const file = path.join(dir, name)
      const stat = await fs.stat(file).catch(() => undefined)
      if (!stat?.isFile()) continue
      const running = known.get(dump!)
      const stale =
        running === undefined ? now - stat.mtimeMs > options.idleMs : running === false || options.dryRun === true
      if (!stale) continue
      if (!options.dryRun) await fs.rm(file, { force: true })
      removed.push(name)
      removedBytes += stat.size
    }
  }
  return { closed: closed.map((r) => Number(r.id)), removed: removed.sort(), removedBytes }
}
