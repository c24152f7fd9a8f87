import { AbortedError, type Logger, sleep } from '@admin-jobs/sdk'
import type { Sql, TransactionSql } from 'postgres'
import type { RemovalEstimate } from './removal-plan.ts'
import type { RangePartition } from './table-layout.ts'

/** A partition whose rows may need to move row by row: its estimated rows and those before the cutoff. */
export interface StraddlingPartition extends RangePartition {
  rows: number
  removable: number
}

/** What a run does with each partition of a range-partitioned audit_logs, and the share it would remove. */
export interface PartitionPlan extends RemovalEstimate {
  /** Entirely before the cutoff: exported whole, then detached and dropped. */
  whole: RangePartition[]
  /** The default partition and any whose range reaches over the cutoff: rows before it move one batch at a time. */
  straddling: StraddlingPartition[]
}

/** A partition detached from audit_logs (by this run or a killed one) whose rows go to month files next. */
export interface DetachedPartition {
  relation: string
  /** UTC months (`YYYY-MM`) it holds rows of. */
  months: string[]
  rows: number
}

/** Margin below the limit within which estimates are not trusted and rows are counted exactly. */
const exactMargin = 0.15

/**
 * Splits the partitions at `cutoff` (rows before `floor` are never removable) and works out the removable share from planner statistics (a partition never
 * analysed is counted), counting every partition exactly when the share comes within 15 points of `maxFraction`.
 */
export async function planPartitions(
  sql: Sql,
  partitions: readonly RangePartition[],
  cutoff: Date,
  maxFraction: number,
  floor: Date,
): Promise<PartitionPlan> {
  const whole: RangePartition[] = []
  for (const p of partitions.filter((p) => !p.isDefault && p.to !== null && p.to <= cutoff)) {
    // Rows before `floor` (-infinity, BC) fit no month file: such a partition moves row by row, setting them aside.
    if (p.from === null || p.from < floor) {
      const [low] = await sql<{ found: boolean }[]>`
        select exists (select 1 from ${sql(p.name)} where occurred_at < ${floor}) as found`
      if (low?.found) continue
    }
    whole.push(p)
  }
  const reaching = partitions.filter((p) => p.isDefault || ((p.from === null || p.from < cutoff) && !whole.includes(p)))
  const later = partitions.filter((p) => !whole.includes(p) && !reaching.includes(p))
  const count = async (p: RangePartition) => {
    const [row] = await sql<{ n: number }[]>`select count(*)::float8 as n from ${sql(p.name)}`
    return row!.n
  }
  const estimated = async (p: RangePartition) => {
    const [row] = await sql<
      { n: number }[]
    >`select reltuples::float8 as n from pg_class where oid = ${p.name}::regclass`
    return row!.n >= 0 ? { n: row!.n, exact: false } : { n: await count(p), exact: true }
  }
  const straddling: StraddlingPartition[] = []
  for (const p of reaching) {
    const [row] = await sql<{ rows: number; removable: number }[]>`
      select count(*)::float8 as rows,
        count(*) filter (where occurred_at < ${cutoff} and occurred_at >= ${floor})::float8 as removable
      from ${sql(p.name)}`
    straddling.push({ ...p, rows: row!.rows, removable: row!.removable })
  }
  const sizes = await Promise.all([...whole, ...later].map(estimated))
  const wholeRows = sizes.slice(0, whole.length)
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
  let removable = sum(wholeRows.map((s) => s.n)) + sum(straddling.map((p) => p.removable))
  let total = sum(sizes.map((s) => s.n)) + sum(straddling.map((p) => p.rows))
  let exact = sizes.every((s) => s.exact)
  if (!exact && total > 0 && removable / total >= maxFraction - exactMargin) {
    const counted = await Promise.all([...whole, ...later].map(count))
    removable = sum(counted.slice(0, whole.length)) + sum(straddling.map((p) => p.removable))
    total = sum(counted) + sum(straddling.map((p) => p.rows))
    exact = true
  }
  return { whole, straddling, total, removable, fraction: total === 0 ? 0 : removable / total, exact }
}

/**
 * Runs `fn` in a short transaction with `lock_timeout` 200 ms, retried while it waits for a lock (live traffic holds
 * one), up to 10 times with growing pauses. Returns how long the committed transaction took.
 */
async function lockedStep(
  sql: Sql,
  options: { signal: AbortSignal; log?: Logger; what: string },
  fn: (tx: TransactionSql) => Promise<unknown>,
): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    if (options.signal.aborted) throw options.signal.reason ?? new AbortedError('aborted')
    const t0 = performance.now()
    try {
      await sql.begin(async (tx) => {
        await tx`set local lock_timeout = '200ms'`
        await fn(tx)
      })
      return performance.now() - t0
    } catch (err) {
      if ((err as { code?: string }).code !== '55P03' || attempt >= 10) throw err
      options.log?.warn(`${options.what} waited too long for a lock; retrying`, { attempt })
      await sleep(100 * attempt, options.signal)
    }
  }
}

/**
 * Detaches each partition from audit_logs and records it in jobs.audit_logs_detached in the same transaction, so
 * its rows are never out of audit_logs without a record saying they still have to reach the month files.
 */
export async function detachPartitions(
  sql: Sql,
  partitions: readonly RangePartition[],
  options: { signal: AbortSignal; log?: Logger },
): Promise<number[]> {
  const times: number[] = []
  for (const p of partitions) {
    const ms = await lockedStep(sql, { ...options, what: `detaching ${p.name}` }, async (tx) => {
      await tx`alter table public.audit_logs detach partition ${tx(p.name)}`
      await tx`insert into jobs.audit_logs_detached (relation) values (${p.name}) on conflict do nothing`
    })
    options.log?.info('partition detached', { partition: p.name, ms: Math.round(ms) })
    times.push(ms)
  }
  return times
}

/** The detached partitions still waiting for their month files, with the months they hold rows of. */
export async function detachedPartitions(sql: Sql, log?: Logger): Promise<DetachedPartition[]> {
  const records = await sql<{ relation: string; present: boolean }[]>`
    select relation, to_regclass(relation) is not null as present from jobs.audit_logs_detached order by relation`
  const out: DetachedPartition[] = []
  for (const { relation, present } of records) {
    if (!present) {
      log?.warn('a detached partition recorded for export no longer exists; forgetting it', { partition: relation })
      await sql`delete from jobs.audit_logs_detached where relation = ${relation}`
      continue
    }
    const table = sql(relation)
    const [span] = await sql<{ first: string | null; last: string | null; rows: number }[]>`
      select to_char(min(occurred_at) at time zone 'UTC', 'YYYY-MM') as first,
             to_char(max(occurred_at) at time zone 'UTC', 'YYYY-MM') as last, count(*)::int as rows
      from ${table}`
    const months: string[] = []
    if (span?.first && span.last) {
      for (let m = span.first; m <= span.last; m = nextMonth(m)) {
        // A partition of several months may skip one: only months it holds rows of get a file.
        const [hit] = await sql<{ found: boolean }[]>`
          select exists (select 1 from ${table}
            where occurred_at >= (${m} || '-01')::timestamp at time zone 'UTC'
              and occurred_at < ((${m} || '-01')::timestamp + interval '1 month') at time zone 'UTC') as found`
        if (hit?.found) months.push(m)
      }
    }
    out.push({ relation, months, rows: span?.rows ?? 0 })
  }
  return out
}

function nextMonth(month: string): string {
  const [y, m] = month.split('-').map(Number) as [number, number]
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`
}

/** Drops partitions whose rows are in sealed month files now, and forgets them, one short transaction each. */
export async function dropDetached(
  sql: Sql,
  partitions: readonly DetachedPartition[],
  options: { signal: AbortSignal; log?: Logger },
): Promise<number[]> {
  const times: number[] = []
  for (const p of partitions) {
    const ms = await lockedStep(sql, { ...options, what: `dropping ${p.relation}` }, async (tx) => {
      await tx`drop table ${tx(p.relation)}`
      await tx`delete from jobs.audit_logs_detached where relation = ${p.relation}`
    })
    options.log?.info('partition archived and dropped', { partition: p.relation, rows: p.rows, ms: Math.round(ms) })
    times.push(ms)
  }
  return times
}
