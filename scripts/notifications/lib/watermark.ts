import type { Sql, TransactionSql } from 'postgres'

/** One audit_logs row as the security rules see it. */
export interface AuditEvent {
  id: string
  occurredAt: Date
  actorId: string | null
  action: string
  targetType: string | null
  targetId: string | null
  ip: string | null
  metadata: Record<string, unknown>
}

/** Ids that were missing below the high-water mark when seen: an uncommitted insert may still fill them. */
export interface GapRange {
  from: string
  to: string
  /** pg_snapshot_xmax when the gap was first seen: once the oldest running xid reaches it, every writer has ended. */
  xmax: string
  /** Transactions of this database in progress when the gap was seen (from pg_locks): once all ended, none can fill it. */
  xids?: string[]
  seenAt: string
}

/** The durable position of the security scan (`jobs.job_state`, key `watermark`). */
export interface Watermark {
  lastId: string
  gaps: GapRange[]
}

/** Options of scanAuditLogs; defaults suit a 15-minute schedule. */
export interface ScanOptions {
  now: Date
  /** How far back a first run (no watermark yet) looks, by occurred_at (default 24h). */
  firstRunLookbackMs?: number
  /** At most this many new rows per run; the rest waits for the next run (default 50,000). */
  batchSize?: number
  /** A gap is kept at least this long even after its writers ended (default 2m: nextval precedes xid assignment). */
  gapGraceMs?: number
  /** A gap is dropped after this long whatever the snapshot says (default 24h). */
  gapMaxAgeMs?: number
  /** At most this many gap ranges are tracked; the oldest go first (default 1,000). */
  maxGapRanges?: number
}

/** What one scan found: rows to evaluate (exactly once) and the watermark to store after they were handled. */
export interface ScanResult {
  events: AuditEvent[]
  next: Watermark
  /** Rows found in earlier gaps (late commits). */
  late: number
  droppedGaps: number
  more: boolean
}

const columns = (sql: Sql | TransactionSql) => sql`
  id::text as id, occurred_at as "occurredAt", actor_id::text as "actorId", action, target_type as "targetType",
  target_id as "targetId", host(ip) as ip, metadata`

/**
 * Reads audit_logs rows not evaluated yet, by id: every row above `lastId` plus any that filled an earlier gap.
 * Runs in one REPEATABLE READ snapshot so the rows read and the snapshot's xmin/xmax agree.
 */
export async function scanAuditLogs(sql: Sql, mark: Watermark | undefined, options: ScanOptions): Promise<ScanResult> {
  const now = options.now
  const batchSize = options.batchSize ?? 50_000
  const graceMs = options.gapGraceMs ?? 2 * 60_000
  const maxAgeMs = options.gapMaxAgeMs ?? 24 * 3_600_000
  const maxRanges = options.maxGapRanges ?? 1_000
  return sql.begin('isolation level repeatable read read only', async (tx) => {
    // The snapshot horizon is cluster-wide (any long transaction on the server holds it back); the transactions of this
    // database, from pg_locks (readable without extra privileges), settle gaps sooner.
    const snapshot = tx<{ xmin: string; xmax: string; running: string[] }[]>`
      select pg_snapshot_xmin(pg_current_snapshot())::text as xmin, pg_snapshot_xmax(pg_current_snapshot())::text as xmax,
        array(select l.transactionid::text from pg_locks l join pg_stat_activity a on a.pid = l.pid
              where l.locktype = 'transactionid' and l.mode = 'ExclusiveLock' and a.datname = current_database()
                and l.transactionid is not null) as running`
    let lastId = mark?.lastId
    let cutoff: Date | undefined
    if (lastId === undefined) {
      // First run: start at the first row of the look-back window; older rows are history, not news.
      cutoff = new Date(now.getTime() - (options.firstRunLookbackMs ?? 24 * 3_600_000))
      const [first] = await tx<{ id: string | null; max: string | null }[]>`
        select (select min(id) from audit_logs where occurred_at >= ${cutoff})::text as id,
               (select max(id) from audit_logs)::text as max`
      lastId = first!.id ? (BigInt(first!.id) - 1n).toString() : (first!.max ?? '0')
    }
    const gaps = mark?.gaps ?? []
    // One snapshot, one round trip: the queries of a transaction are pipelined on its connection.
    const [[snap], fresh, filled] = await Promise.all([
      snapshot,
      tx<AuditEvent[]>`
        select ${columns(tx)} from audit_logs where audit_logs.id > ${lastId} order by audit_logs.id limit ${batchSize}`,
      gaps.length
        ? tx<AuditEvent[]>`
          select ${columns(tx)} from audit_logs a
          join unnest(${gaps.map((g) => g.from)}::bigint[], ${gaps.map((g) => g.to)}::bigint[]) as g(f, t)
            on a.id between g.f and g.t
          order by a.id`
        : ([] as AuditEvent[]),
    ])

    // New gaps: ids between the old high-water mark and the highest id read that no visible row holds.
    const seenAt = now.toISOString()
    const newGaps: GapRange[] = []
    let expected = BigInt(lastId) + 1n
    for (const row of fresh) {
      const id = BigInt(row.id)
      if (id > expected)
        newGaps.push({
          from: expected.toString(),
          to: (id - 1n).toString(),
          xmax: snap!.xmax,
          xids: snap!.running,
          seenAt,
        })
      expected = id + 1n
    }

    // Old gaps: remove filled ids, then drop what no running transaction can still fill.
    const filledIds = filled.map((r) => BigInt(r.id)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    const horizon = BigInt(snap!.xmin)
    const running = new Set(snap!.running)
    let droppedGaps = 0
    const kept: GapRange[] = []
    for (const gap of gaps) {
      const age = now.getTime() - Date.parse(gap.seenAt)
      const writersEnded =
        horizon >= BigInt(gap.xmax) || (gap.xids !== undefined && !gap.xids.some((x) => running.has(x)))
      const settled = writersEnded && age >= graceMs
      if (settled || age >= maxAgeMs) {
        droppedGaps++
        continue
      }
      kept.push(...subtract(gap, filledIds))
    }
    let all = [...kept, ...newGaps]
    if (all.length > maxRanges) {
      droppedGaps += all.length - maxRanges
      all = all.slice(all.length - maxRanges)
    }
    const top = fresh.length ? fresh[fresh.length - 1]!.id : lastId
    const events = [...filled, ...(cutoff ? fresh.filter((e) => e.occurredAt >= cutoff) : fresh)]
    return {
      events,
      next: { lastId: top, gaps: all },
      late: filled.length,
      droppedGaps,
      more: fresh.length === batchSize,
    }
  }) as Promise<ScanResult>
}

/** The parts of `gap` not covered by the sorted ids. */
export function subtract(gap: GapRange, sortedIds: readonly bigint[]): GapRange[] {
  const out: GapRange[] = []
  let from = BigInt(gap.from)
  const to = BigInt(gap.to)
  for (const id of sortedIds) {
    if (id < from || id > to) continue
    if (id > from) out.push({ ...gap, from: from.toString(), to: (id - 1n).toString() })
    from = id + 1n
  }
  if (from <= to) out.push({ ...gap, from: from.toString(), to: to.toString() })
  return out
}
