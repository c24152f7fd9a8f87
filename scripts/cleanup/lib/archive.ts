import fs from 'node:fs/promises'
import type { Logger } from '@admin-jobs/sdk'
import type { PendingQuery, ReservedSql, Row, Sql } from 'postgres'
import { type MonthFile, removeStaleTempFiles, writeManifests, writeMonthFile } from './archive-files.ts'
import { type BatchTotals, batchSession, reserveConnections, walkIndex } from './batches.ts'
import { sweepHeap } from './heap-sweep.ts'
import { inLanes } from './lanes.ts'
import {
  type DetachedPartition,
  detachedPartitions,
  detachPartitions,
  dropDetached,
  planPartitions,
} from './partitions.ts'
import { assertWithinLimit, estimateRemoval, type RemovalEstimate } from './removal-plan.ts'
import { readTableLayout, type TableLayout } from './table-layout.ts'

/**
 * Options of archiveAuditLogs. Defaults: no share cap, heap ranges from an estimated 10% past retention, ~100 ms
 * batches, a progress line every 5 s.
 */
export interface ArchiveOptions {
  /** Rows with occurred_at before this leave audit_logs. */
  cutoff: Date
  archiveDir: string
  dryRun: boolean
  signal: AbortSignal
  log?: Logger
  maxFraction?: number
  maxFractionVariable?: string
  /** Rewrite every month file from the archive table, not only the months this or a killed run touched. */
  rebuild?: boolean
  heapThreshold?: number
  targetBatchMs?: number
  /** Connections moving rows and building month files at the same time (default 2). */
  connections?: number
  progressEveryMs?: number
}

/** What an archive run did (or in a dry run would do). */
export interface ArchiveResult {
  archived: number
  wouldArchive?: number
  oldest?: string | null
  newest?: string | null
  /** Rows per UTC month that would be archived (dry run). */
  byMonth?: Record<string, number>
  tableRows: number
  fraction: number
  strategy: 'heap' | 'index' | 'partitions' | 'none' | 'dry-run'
  batches: number
  longestTransactionMs: number
  /** Batches rolled back at the per-statement cap and tried again smaller. */
  cappedBatches?: number
  /** Range-partitioned audit_logs: partitions exported whole and dropped, their rows, and their lock time. */
  partitions?: number
  partitionRows?: number
  partitionLockMs?: number
  /** Of that: the detaches (the only transactions here that lock audit_logs itself) and their longest. */
  partitionDetachMs?: number
  longestDetachMs?: number
  /** Of that: the drops of detached partitions (which lock no table live queries use). */
  partitionDropMs?: number
  /** Partitions a real run would export whole (dry run). */
  wholePartitions?: string[]
  /** Month files written by this run. */
  files: string[]
  fileRows: number
  /** Rows past retention that no month file can hold (see `firstArchivable`): left in audit_logs. */
  setAside: SetAside
  durationMs: number
}

/** Audit rows archival leaves where they are, and the first of their ids. */
export interface SetAside {
  count: number
  ids: string[]
}

/**
 * The first instant a month file can hold. Rows before it — `-infinity`, or dates BC, which `YYYY-MM` cannot name —
 * are set aside in audit_logs (reported with their ids) so that they never block the rows beside them, and no row
 * reaches the archive table without a month file to hold it.
 */
export const firstArchivable = new Date('0001-01-01T00:00:00.000Z')

/** How many set-aside ids a run reports. */
const setAsideIdsShown = 20

async function findSetAside(sql: Sql): Promise<SetAside> {
  const [row] = await sql<{ count: number; ids: string[] | null }[]>`
    select count(*)::int as count,
           (array_agg(id::text order by id))[1:${setAsideIdsShown}] as ids
    from audit_logs where occurred_at < ${firstArchivable}`
  return { count: row?.count ?? 0, ids: row?.ids ?? [] }
}

/**
 * Moves audit_logs rows older than `cutoff` into jobs.audit_logs_archive — delete and insert in one transaction per
 * batch, so a row is in exactly one of the two tables at every commit — and marks their months dirty in the same
 * transaction. Then rewrites each dirty month's file from the archive table (deterministic, temp + rename), clears the
 * flag, and writes the manifests last. A run killed anywhere is completed by the next one.
 *
 * A range-partitioned audit_logs (on occurred_at): the default partition and any partition reaching over the cutoff
 * move row by row as above; each partition entirely before it is detached (recorded in jobs.audit_logs_detached in the
 * same transaction), its rows are written into their month files, the months are recorded as sealed (the file is
 * their only copy from then on), and only then is the partition dropped.
 */
export async function archiveAuditLogs(sql: Sql, options: ArchiveOptions): Promise<ArchiveResult> {
  const started = performance.now()
  const where = sql`occurred_at < ${options.cutoff} and occurred_at >= ${firstArchivable}`
  const maxFraction = options.maxFraction ?? 1
  const rail = {
    table: 'audit_logs',
    maxFraction,
    variable: options.maxFractionVariable ?? 'AUDIT_LOG_MAX_FRACTION',
    verb: 'archive',
  }
  // Before anything else, dry run included: a layout the moves cannot cover in full fails the run.
  const layout = await readTableLayout(sql, 'audit_logs', 'occurred_at')
  if (options.dryRun) return preview(sql, options, rail, started, layout)

  let moved: BatchTotals = { rows: 0, batches: 0, longestTransactionMs: 0, capped: 0 }
  let estimate: RemovalEstimate
  let strategy: ArchiveResult['strategy']
  const detachMs: number[] = []
  if (layout.kind === 'plain') {
    estimate = await estimateRemoval(sql, { table: 'audit_logs', where, maxFraction })
    assertWithinLimit(estimate, rail)
    strategy = estimate.exact && estimate.removable === 0 ? 'none' : pick(estimate.fraction, options)
    if (strategy !== 'none') {
      options.log?.info('archiving audit logs', {
        strategy,
        before: options.cutoff.toISOString(),
        estimated: Math.round(estimate.removable),
        of: Math.round(estimate.total),
      })
      moved = await moveRows(sql, options, where, strategy, estimate.removable, 'audit_logs')
    }
  } else {
    const plan = await planPartitions(sql, layout.partitions, options.cutoff, maxFraction, firstArchivable)
    estimate = plan
    assertWithinLimit(plan, rail)
    strategy = 'partitions'
    options.log?.info('archiving audit logs', {
      strategy,
      before: options.cutoff.toISOString(),
      estimated: Math.round(plan.removable),
      of: Math.round(plan.total),
      wholePartitions: plan.whole.length,
    })
    for (const p of plan.straddling.filter((s) => s.removable > 0)) {
      const part = await moveRows(sql, options, where, pick(p.removable / p.rows, options), p.removable, p.name)
      moved = {
        rows: moved.rows + part.rows,
        batches: moved.batches + part.batches,
        longestTransactionMs: Math.max(moved.longestTransactionMs, part.longestTransactionMs),
        capped: (moved.capped ?? 0) + (part.capped ?? 0),
      }
    }
    detachMs.push(...(await detachPartitions(sql, plan.whole, options)))
  }
  // Partitions detached by this run, or by a killed one, reach their month files and are dropped only then.
  const detached = await detachedPartitions(sql, options.log)
  const files = await buildFiles(sql, options, detached)
  const dropMs = await dropDetached(sql, detached, options)
  const lockMs = [...detachMs, ...dropMs]
  const sum = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0))
  const partitionRows = detached.reduce((n, p) => n + p.rows, 0)
  const written = files.filter((f) => f.written)
  const setAside = await findSetAside(sql)
  return {
    archived: moved.rows + partitionRows,
    tableRows: Math.round(estimate.total),
    fraction: Math.round(estimate.fraction * 10_000) / 10_000,
    strategy,
    batches: moved.batches,
    longestTransactionMs: Math.max(moved.longestTransactionMs, Math.round(Math.max(0, ...lockMs) * 10) / 10),
    cappedBatches: moved.capped ?? 0,
    ...(layout.kind === 'partitioned'
      ? {
          partitions: detached.length,
          partitionRows,
          partitionLockMs: sum(lockMs),
          partitionDetachMs: sum(detachMs),
          longestDetachMs: Math.round(Math.max(0, ...detachMs) * 10) / 10,
          partitionDropMs: sum(dropMs),
        }
      : {}),
    files: written.map((f) => f.file),
    fileRows: written.reduce((n, f) => n + f.rows, 0),
    setAside,
    durationMs: Math.round(performance.now() - started),
  }
}

function pick(fraction: number, options: ArchiveOptions): 'heap' | 'index' {
  return fraction >= (options.heapThreshold ?? 0.1) ? 'heap' : 'index'
}

async function moveRows(
  sql: Sql,
  options: ArchiveOptions,
  where: PendingQuery<Row[]>,
  strategy: 'heap' | 'index',
  expectedRows: number,
  relation: string,
): Promise<BatchTotals> {
  // Heap sweeps run on several connections at once (see sweepHeap); an index walk goes on one. The batches lock their
  // months' rows in month order, so two of them never wait on each other in a cycle.
  const n = strategy === 'heap' ? Math.max(1, options.connections ?? 2) : 1
  const conns = await reserveConnections(sql, n).all
  try {
    // Asynchronous commit loses, at worst, whole recent transactions on a server crash: the rows are then still in
    // audit_logs, never in neither table. The file phase starts with a synchronous commit, which flushes them all.
    await batchSession.set(conns)
    const move = (selection: PendingQuery<Row[]>, conn: ReservedSql) => conn`
      with moved as (
        delete from ${conn(relation)} where ${selection} and ${where}
        returning id, occurred_at, actor_id, action, target_type, target_id, ip, user_agent, metadata
      ), kept as (
        insert into jobs.audit_logs_archive (id, occurred_at, actor_id, action, target_type, target_id, ip, user_agent, metadata)
        select id, occurred_at, actor_id, action, target_type, target_id, ip, user_agent, metadata from moved
        returning occurred_at
      ), months as (
        insert into jobs.audit_logs_archive_months (month)
        select distinct to_char(occurred_at at time zone 'UTC', 'YYYY-MM') from kept order by 1
        on conflict (month) do update set dirty = true
      )
      select count(*)::int as n from kept`
    const batch = {
      table: relation,
      signal: options.signal,
      log: options.log,
      targetBatchMs: options.targetBatchMs,
      progressEveryMs: options.progressEveryMs,
      expectedRows,
    }
    return strategy === 'heap'
      ? await sweepHeap(conns, batch, move)
      : await walkIndex(conns[0]!, { ...batch, column: 'occurred_at', before: options.cutoff }, move)
  } finally {
    await batchSession.reset(conns)
    for (const conn of conns) conn.release()
  }
}

async function buildFiles(
  sql: Sql,
  options: ArchiveOptions,
  detached: readonly DetachedPartition[],
): Promise<(MonthFile & { written: boolean })[]> {
  await fs.mkdir(options.archiveDir, { recursive: true })
  await removeStaleTempFiles(options.archiveDir, options.log)
  // A sealed month's file is the only copy of its dropped partitions' rows: it is merged into, never rebuilt.
  if (options.rebuild) await sql`update jobs.audit_logs_archive_months set dirty = true where not sealed`
  // A synchronous commit: every asynchronously committed move before it is durable before files are built from it.
  await sql`select pg_current_xact_id()`
  const dirty = await sql<{ month: string }[]>`
    select month from jobs.audit_logs_archive_months where dirty order by month`
  const months = [...new Set([...dirty.map((d) => d.month), ...detached.flatMap((p) => p.months)])].sort()
  const written = new Map<string, MonthFile>()
  const buildMonth = async (month: string) => {
    const [known] = await sql<{ sealed: boolean; sha256: string | null; pending: string | null }[]>`
      select sealed, sha256, pending_sha256 as pending from jobs.audit_logs_archive_months where month = ${month}`
    const partitions = detached.filter((p) => p.months.includes(month)).map((p) => p.relation)
    const sealed = known?.sealed ?? false
    const file = await writeMonthFile(sql, {
      archiveDir: options.archiveDir,
      month,
      signal: options.signal,
      partitions,
      previous: sealed ? [known?.sha256, known?.pending].filter((x): x is string => !!x) : undefined,
      beforeReplace: sealed
        ? async (sha256) => {
            await sql`update jobs.audit_logs_archive_months set pending_sha256 = ${sha256} where month = ${month}`
          }
        : undefined,
    })
    await sql`
      insert into jobs.audit_logs_archive_months (month, dirty, rows, bytes, sha256, sealed, pending_sha256, built_at)
      values (${month}, false, ${file.rows}, ${file.bytes}, ${file.sha256}, ${sealed || partitions.length > 0}, null, now())
      on conflict (month) do update set dirty = false, rows = excluded.rows, bytes = excluded.bytes,
        sha256 = excluded.sha256, sealed = excluded.sealed, pending_sha256 = null, built_at = excluded.built_at`
    written.set(month, file)
    options.log?.info('month file written', {
      file: file.file,
      rows: file.rows,
      sha256: file.sha256.slice(0, 12),
      ...(partitions.length ? { partitions: partitions.join(',') } : {}),
    })
  }
  // Two months at a time (or one with a single connection): a line is database work, and gzip runs beside it.
  await inLanes(months, Math.min(2, Math.max(1, options.connections ?? 2)), buildMonth)
  const all = await sql<{ month: string; rows: string; bytes: string; sha256: string }[]>`
    select month, rows::text, bytes::text, sha256 from jobs.audit_logs_archive_months
    where not dirty order by month`
  const files = all.map((m) => ({
    file: `audit-logs-${m.month}.ndjson.gz`,
    month: m.month,
    rows: Number(m.rows),
    bytes: Number(m.bytes),
    sha256: m.sha256,
    written: written.has(m.month),
  }))
  await writeManifests(options.archiveDir, files)
  return files
}

async function preview(
  sql: Sql,
  options: ArchiveOptions,
  rail: { table: string; maxFraction: number; variable: string; verb: string },
  started: number,
  layout: TableLayout,
): Promise<ArchiveResult> {
  const [totals] = await sql<{ total: number; past: number; oldest: Date | null; newest: Date | null }[]>`
    select count(*)::float8 as total,
           count(*) filter (where occurred_at < ${options.cutoff} and occurred_at >= ${firstArchivable})::float8 as past,
           min(occurred_at) filter (where occurred_at < ${options.cutoff} and occurred_at >= ${firstArchivable}) as oldest,
           max(occurred_at) filter (where occurred_at < ${options.cutoff}) as newest
    from audit_logs`
  const months = await sql<{ month: string; n: number }[]>`
    select to_char(occurred_at at time zone 'UTC', 'YYYY-MM') as month, count(*)::int as n
    from audit_logs where occurred_at < ${options.cutoff} and occurred_at >= ${firstArchivable} group by 1 order by 1`
  const pending = await sql<{ month: string }[]>`
    select month from jobs.audit_logs_archive_months
    where dirty or (${options.rebuild ?? false} and not sealed) order by month`
  const whole =
    layout.kind === 'partitioned'
      ? layout.partitions.filter((p) => !p.isDefault && p.to !== null && p.to <= options.cutoff).map((p) => p.name)
      : []
  if (whole.length)
    options.log?.info('dry run: would export whole partitions and drop them', { partitions: whole.join(',') })
  const total = totals?.total ?? 0
  const past = totals?.past ?? 0
  const fraction = total === 0 ? 0 : past / total
  const oldest = totals?.oldest?.toISOString() ?? null
  const newest = totals?.newest?.toISOString() ?? null
  options.log?.info(`dry run: would archive ${past} of ${total} audit_logs rows`, {
    before: options.cutoff.toISOString(),
    oldest,
    newest,
    share: `${(fraction * 100).toFixed(1)}%`,
  })
  for (const m of months) options.log?.info(`dry run: month ${m.month}`, { rows: m.n })
  if (pending.length)
    options.log?.info('dry run: would rebuild month files', { months: pending.map((p) => p.month).join(',') })
  try {
    assertWithinLimit({ total, removable: past, fraction, exact: true }, rail)
  } catch (err) {
    options.log?.warn(`dry run: a real run would refuse: ${(err as Error).message}`)
  }
  return {
    archived: 0,
    wouldArchive: past,
    oldest,
    newest,
    byMonth: Object.fromEntries(months.map((m) => [m.month, m.n])),
    tableRows: total,
    fraction: Math.round(fraction * 10_000) / 10_000,
    strategy: 'dry-run',
    ...(layout.kind === 'partitioned' ? { wholePartitions: whole } : {}),
    batches: 0,
    longestTransactionMs: 0,
    files: [],
    fileRows: 0,
    setAside: await findSetAside(sql),
    durationMs: Math.round(performance.now() - started),
  }
}
