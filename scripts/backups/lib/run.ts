import fs from 'node:fs'
import path from 'node:path'
import { type Config, ConfigError, type EnvReader, firstLine, type JobContext, toError, toMs } from '@admin-jobs/sdk'
import { dumpDatabase } from './dump.ts'
import { cleanLeftovers, type Leftovers } from './leftovers.ts'
import { pruneBackups } from './prune.ts'
import { backupFileName, type RetentionPolicy } from './retention.ts'
import { checkDumpSize } from './size-check.ts'
import { clientBaseVariables, type LibpqTarget, libpqTarget, sameDatabase } from './target.ts'
import { checkToolsAgainstServer, findPgTools, type PgTools } from './tools.ts'
import { countTables, type TableCounts, type Verification, verifyBackup } from './verify.ts'

/** The job's timeout; also how long a partial dump with no row may sit unwritten before it counts as abandoned. */
export const backupTimeout = '3h'

/** Settings of backups/database (defaults: pg_dump/pg_restore on PATH, keep 7/4/12, 2 restore jobs). */
export interface BackupSettings {
  /** pg_dump and pg_restore, found and run with `--version` while the settings are read. */
  tools: PgTools
  /** What the clients see of the job's environment (PATH, HOME, locale): nothing else. */
  clientEnv: Readonly<Record<string, string>>
  verifyUrl: string | undefined
  verifyTarget: LibpqTarget | undefined
  policy: RetentionPolicy
  compression: number | undefined
  restoreJobs: number
  /** `--verify <file|latest>`: verify an existing dump instead of taking one. */
  verifyOnly: string | undefined
}

/**
 * Reads and checks every setting before any connection: PG_DUMP and PG_RESTORE (found, and answering `--version`),
 * BACKUP_VERIFY_DATABASE_URL (a URL the clients can use, not the admin database), BACKUP_KEEP_DAILY/WEEKLY/MONTHLY,
 * BACKUP_COMPRESSION, BACKUP_RESTORE_JOBS, BACKUP_DIR (a directory when it exists), the parameters of DATABASE_URL,
 * and `--verify` (`latest`, or a dump that exists). Anything wrong is a ConfigError: exit 2, no history row.
 */
export function readBackupSettings(
  read: EnvReader,
  config: Config,
  flags: Readonly<Record<string, string | boolean | undefined>>,
): BackupSettings {
  const admin = config.databaseUrl ? libpqTarget(config.databaseUrl, 'DATABASE_URL') : undefined
  const verifyUrl = read.url('BACKUP_VERIFY_DATABASE_URL', ['postgres', 'postgresql'])
  const verifyTarget = verifyUrl ? libpqTarget(verifyUrl, 'BACKUP_VERIFY_DATABASE_URL') : undefined
  if (verifyTarget && admin && sameDatabase(verifyTarget, admin)) throw sameAsAdmin()
  const compression = read.string('BACKUP_COMPRESSION')
  const policy = {
    daily: read.integer('BACKUP_KEEP_DAILY', 7, { min: 1, max: 3660 }),
    weekly: read.integer('BACKUP_KEEP_WEEKLY', 4, { min: 0, max: 520 }),
    monthly: read.integer('BACKUP_KEEP_MONTHLY', 12, { min: 0, max: 1200 }),
  }
  const restoreJobs = read.integer('BACKUP_RESTORE_JOBS', 2, { min: 1, max: 32 })
  const dir = fs.statSync(config.backupDir, { throwIfNoEntry: false })
  if (dir && !dir.isDirectory())
    throw new ConfigError(`BACKUP_DIR (${config.backupDir}) is not a directory`, { variable: 'BACKUP_DIR' })
  const verifyOnly = typeof flags.verify === 'string' ? flags.verify : undefined
  if (verifyOnly !== undefined && verifyOnly !== 'latest') {
    const file = path.resolve(config.backupDir, verifyOnly)
    if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile())
      throw new ConfigError(`--verify ${verifyOnly}: no such dump (${file})`, { variable: '--verify' })
  }
  const tools = { pgDump: read.string('PG_DUMP', 'pg_dump'), pgRestore: read.string('PG_RESTORE') }
  // Last (and so last in --help): what the clients get of the job's own environment.
  const base: Record<string, string> = {}
  for (const name of clientBaseVariables) {
    const value = read.string(name)
    if (value !== undefined) base[name] = value
  }
  return {
    tools: findPgTools(tools, base),
    clientEnv: base,
    verifyUrl,
    verifyTarget,
    policy,
    compression: compression === undefined ? undefined : read.integer('BACKUP_COMPRESSION', 0, { min: 0, max: 9 }),
    restoreJobs,
    verifyOnly,
  }
}

const sameAsAdmin = () =>
  new ConfigError(
    'BACKUP_VERIFY_DATABASE_URL names the admin database itself: it must be a scratch database (a restore check drops everything in it)',
    { variable: 'BACKUP_VERIFY_DATABASE_URL' },
  )

type Ctx = JobContext<BackupSettings>

/**
 * The backups/database job: first cleans up after runs that died mid-dump, then pg_dump (custom format) of the admin
 * database to BACKUP_DIR with a `.sha256`, verified (checksum, `pg_restore --list`, and a full restore with row counts
 * when BACKUP_VERIFY_DATABASE_URL is set), recorded in jobs.backups / jobs.backup_verifications, size-checked against
 * recent dumps, then pruned by the retention policy.
 */
export async function runBackup(ctx: Ctx) {
  const { sql, log, settings, config, dryRun, signal } = ctx
  // The embedded server's URL is known only now; DATABASE_URL's was checked with the settings.
  const target = libpqTarget(ctx.database.url)
  if (settings.verifyTarget && sameDatabase(settings.verifyTarget, target)) throw sameAsAdmin()
  const serverVersion = await checkToolsAgainstServer(sql, settings.tools)
  const database = ctx.database.name.replace(/[^\w.-]/g, '_')
  const leftovers = await cleanLeftovers({
    sql,
    dir: config.backupDir,
    runId: ctx.run.id,
    idleMs: toMs(backupTimeout),
    dryRun,
  })
  reportLeftovers(ctx, leftovers)
  if (settings.verifyOnly) return { ...(await verifyExisting(ctx, database)), ...leftoverStats(leftovers, dryRun) }

  const takenAt = ctx.now()
  const name = backupFileName(database, takenAt)
  const file = path.join(config.backupDir, name)
  const { pgDump, pgRestore } = settings.tools
  if (dryRun) {
    const prune = await pruneBackups({ sql, dir: config.backupDir, database, policy: settings.policy, dryRun: true })
    log.info(`dry run: would dump ${database} to ${file}`, { pgDump: pgDump.version, server: serverVersion })
    for (const p of prune.pruned) log.info(`dry run: would prune ${p}`)
    return { file: name, wouldPrune: prune.pruned.length, pruneList: prune.pruned }
  }

  const [backup] = await sql<{ id: string }[]>`
    insert into jobs.backups (run_id, database, file, taken_at, server_version, pg_dump_version)
    values (${ctx.run.id}, ${database}, ${name}, ${takenAt}, ${serverVersion}, ${pgDump.version})
    returning id`
  const backupId = backup!.id
  // With a restore check, pg_dump reads a snapshot this connection exported, and the row counts it is compared with
  // are read in that same snapshot, so a busy database cannot make a good backup look wrong.
  const snapshotConn = settings.verifyUrl ? await sql.reserve() : undefined
  let counts: TableCounts | undefined
  let dumped: Awaited<ReturnType<typeof dumpDatabase>>
  let verification: Verification
  try {
    let snapshot: string | undefined
    if (snapshotConn) {
      await snapshotConn`begin isolation level repeatable read read only`
      snapshot = (await snapshotConn<{ id: string }[]>`select pg_export_snapshot() as id`)[0]!.id
    }
    try {
      dumped = await dumpDatabase({
        pgDump: pgDump.path,
        target,
        env: settings.clientEnv,
        file,
        snapshot,
        compression: settings.compression,
        signal,
      })
    } catch (err) {
      await sql`
        update jobs.backups set status = 'failed', finished_at = now(), error = ${firstLine(toError(err))}
        where id = ${backupId}`
      throw err
    }
    log.info('dump written', { file: name, bytes: dumped.sizeBytes, ms: dumped.dumpMs })
    await sql`
      update jobs.backups set status = 'created', finished_at = now(), size_bytes = ${dumped.sizeBytes},
        sha256 = ${dumped.sha256}, dump_ms = ${dumped.dumpMs}
      where id = ${backupId}`
    const countsStarted = performance.now()
    if (snapshotConn) counts = await countTables(snapshotConn)
    const countMs = Math.round(performance.now() - countsStarted)
    if (snapshotConn) await snapshotConn`commit`
    verification = await verifyBackup({
      pgRestore: pgRestore.path,
      file,
      env: settings.clientEnv,
      restoreUrl: settings.verifyUrl,
      expectedCounts: counts,
      jobs: settings.restoreJobs,
      signal,
    })
    verification.verifyMs += countMs
  } finally {
    if (snapshotConn) {
      // A no-op after the commit; after a failure it ends the snapshot transaction before the connection is reused.
      await snapshotConn`rollback`.catch(() => {})
      snapshotConn.release()
    }
  }
  await recordVerification(ctx, backupId, name, verification, counts)
  const size = await checkDumpSize(ctx, { database, backupId, sizeBytes: dumped.sizeBytes })
  if (verification.status === 'failed') {
    // Nothing is pruned after a bad dump: the older good ones are what is left.
    throw new Error(`backup ${name} failed verification: ${verification.error}`)
  }
  const prune = await pruneBackups({ sql, dir: config.backupDir, database, policy: settings.policy })
  for (const p of prune.pruned) log.info(`pruned ${p}`)
  ctx.summary.table([
    ['file', 'size', 'dump', 'verification', 'tables', 'rows'],
    [
      name,
      `${(dumped.sizeBytes / 1048576).toFixed(1)} MB`,
      `${dumped.dumpMs} ms`,
      verification.restored ? 'checksum, list, restore' : 'checksum, list',
      verification.tables ?? '–',
      verification.rows ?? '–',
    ],
  ])
  return {
    file: name,
    sizeBytes: dumped.sizeBytes,
    sha256: dumped.sha256,
    dumpMs: dumped.dumpMs,
    verifyMs: verification.verifyMs,
    verification: verification.status,
    restored: verification.restored,
    tables: verification.tables,
    rows: verification.rows,
    medianBytes: size.medianBytes,
    small: size.small,
    kept: prune.kept.length,
    pruned: prune.pruned.length,
    ...leftoverStats(leftovers),
  }
}

function reportLeftovers(ctx: Ctx, l: Leftovers) {
  if (!l.closed.length && !l.removed.length) return
  const mb = (l.removedBytes / 1048576).toFixed(1)
  if (ctx.dryRun) {
    // Without the lock a dry run cannot tell a dead run's leftovers from a live run's work in progress.
    ctx.log.info(
      `dry run: found ${l.closed.length} backup(s) marked running and ${l.removed.length} partial dump(s) (${mb} MB); a run with the lock closes and removes those of runs that died`,
    )
    return
  }
  ctx.log.warn(
    `closed ${l.closed.length} backup(s) left running and removed ${l.removed.length} partial dump(s) (${mb} MB) of runs that died mid-dump`,
    { backups: l.closed.join(',') || undefined, files: l.removed.join(',') || undefined },
  )
}

/** The leftovers in the run's stats, only when there were any (most runs find none). */
function leftoverStats(l: Leftovers, dryRun = false) {
  if (dryRun || (!l.closed.length && !l.removed.length)) return {}
  return {
    leftoverBackupsClosed: l.closed.length,
    partialsRemoved: l.removed.length,
    partialBytesRemoved: l.removedBytes,
  }
}

async function recordVerification(
  ctx: Ctx,
  backupId: string | null,
  file: string,
  v: Verification,
  counts: TableCounts | undefined,
) {
  const { sql } = ctx
  await sql.begin(async (tx) => {
    await tx`
      insert into jobs.backup_verifications
        (backup_id, run_id, file, finished_at, status, checksum_ok, toc_entries, restored, tables, rows, mismatches,
         verify_ms, error)
      values (${backupId}, ${ctx.run.id}, ${file}, now(), ${v.status}, ${v.checksumOk}, ${v.tocEntries ?? null},
              ${v.restored}, ${v.tables ?? null}, ${v.rows ?? null}, ${tx.json(v.mismatches as never)}, ${v.verifyMs},
              ${v.error ?? null})`
    if (backupId !== null) {
      await tx`
        update jobs.backups
        set status = ${v.status === 'passed' ? 'verified' : 'verification_failed'},
            table_counts = coalesce(${counts ? tx.json(counts) : null}, table_counts)
        where id = ${backupId}`
    }
  })
  if (v.status === 'failed') ctx.log.error(`verification of ${file} failed: ${v.error}`)
  else ctx.log.info(`verified ${file}`, { restored: v.restored, tables: v.tables, rows: v.rows, ms: v.verifyMs })
}

/** `--verify <file|latest>`: verifies a dump already in BACKUP_DIR against the row counts recorded when it was taken. */
async function verifyExisting(ctx: Ctx, database: string) {
  const { sql, config, settings } = ctx
  let name = settings.verifyOnly!
  if (name === 'latest') {
    const [row] = await sql<{ file: string }[]>`
      select file from jobs.backups
      where database = ${database} and status in ('created', 'verified', 'verification_failed') and pruned_at is null
      order by taken_at desc, id desc limit 1`
    if (!row) throw new ConfigError(`--verify latest: no backup of ${database} is recorded`, { variable: '--verify' })
    name = row.file
  }
  const file = path.isAbsolute(name) ? name : path.join(config.backupDir, name)
  const [backup] = await sql<{ id: string; table_counts: TableCounts | null }[]>`
    select id, table_counts from jobs.backups where file = ${path.basename(file)} order by id desc limit 1`
  if (ctx.dryRun) {
    ctx.log.info(`dry run: would verify ${file}`)
    return { file: path.basename(file) }
  }
  const v = await verifyBackup({
    pgRestore: settings.tools.pgRestore.path,
    file,
    env: settings.clientEnv,
    restoreUrl: settings.verifyUrl,
    expectedCounts: backup?.table_counts ?? undefined,
    jobs: settings.restoreJobs,
    signal: ctx.signal,
  })
  await recordVerification(ctx, backup?.id ?? null, path.basename(file), v, undefined)
  if (v.status === 'failed') throw new Error(`backup ${path.basename(file)} failed verification: ${v.error}`)
  return {
    file: path.basename(file),
    verification: v.status,
    restored: v.restored,
    tables: v.tables,
    rows: v.rows,
    verifyMs: v.verifyMs,
  }
}
