import { AbortedError, type Logger, sleep } from '@admin-jobs/sdk'
import type { PendingQuery, ReservedSql, Row, Sql } from 'postgres'
import { inLanes } from './lanes.ts'
import { createProgress } from './progress.ts'
import { readTableLayout } from './table-layout.ts'

/**
 * Options shared by the batch engines; defaults: ~100 ms per batch, a hard cap on each statement of 200 ms (or the
 * target + 100 ms when that is more), a progress line every 5 s.
 */
export interface BatchOptions {
  table: string
  signal: AbortSignal
  log?: Logger
  /** Wall time one batch (one autocommit transaction) aims at; sizes adapt to it. */
  targetBatchMs?: number
  /**
   * Hard cap on one batch statement (`statement_timeout` on the batch connection): a batch that runs over it (a
   * checkpoint, a cold page range) is rolled back and tried again at a quarter of its size, so no transaction holds
   * its row locks for long. 0 turns the cap off.
   */
  capMs?: number
  progressEveryMs?: number
  /** The rows the loop expects to process, for the progress ETA of index walks. */
  expectedRows?: number
  /**
   * The extra connections run no batch before this settles: work the caller runs beside the batches on a connection of
   * its own (an exact count) takes the place of one of them meanwhile, instead of all competing for the server's CPU.
   */
  extrasAfter?: Promise<unknown>
}

/** What an engine did: rows the batch statements reported, batches, and the slowest batch (= longest transaction). */
export interface BatchTotals {
  rows: number
  batches: number
  longestTransactionMs: number
  /** Batches rolled back at the cap and tried again smaller. */
  capped?: number
  /** Heap pages a sweep covered. */
  pages?: number
}

/**
 * A batch statement, run on `conn` (the engine's connection for this batch) with `selection` as the rows' filter: the
 * rows it processed are its first row's `n` when it has one, else its command's row count.
 */
export type BatchStatement = (
  selection: PendingQuery<Row[]>,
  conn: ReservedSql,
) => PendingQuery<Row[]> | Promise<{ count: number; [index: number]: Row | undefined }>

/** The rows a batch statement processed. */
export function processed(result: { count: number; [index: number]: Row | undefined }): number {
  const n = result[0]?.n
  return typeof n === 'number' ? n : result.count
}

/** A statement cancelled by `statement_timeout` (not by the runner's own cancel, which says "user request"). */
function hitCap(err: unknown): boolean {
  const e = err as { code?: string; message?: string }
  return e.code === '57014' && /statement timeout/.test(e.message ?? '')
}

/** Thrown to the engine's loop: the batch was rolled back at the cap; shrink it and try again. */
export class CapReached extends Error {}

/** The batch loop every engine shares: the cap, lock-timeout retries, strikes, totals (see `run`). */
export function createBatcher(conn: ReservedSql, options: BatchOptions) {
  const totals = { rows: 0, batches: 0, longest: 0, capped: 0 }
  const capMs = options.capMs ?? Math.max(200, (options.targetBatchMs ?? 100) + 100)
  let capped = false
  let strikes = 0
  return {
    totals,
    /** Sets the cap on the batch connection; `finish` takes it off. */
    async start() {
      if (capMs > 0) {
        await conn`select set_config('statement_timeout', ${`${capMs}ms`}, false)`
        capped = true
      }
    },
    async finish() {
      if (capped) await conn`reset statement_timeout`.catch(() => {})
      capped = false
    },
    /**
     * Runs one batch. A lock timeout (55P03) or a deadlock (40P01) rolls it back and it is tried again a few times. A
     * batch over the cap throws CapReached so the engine shrinks it; `smallest` says the engine cannot shrink it any
     * further, and after three such strikes in a row that one batch runs uncapped (logged) so the run still makes
     * progress.
     */
    async run<T>(fn: () => Promise<T>, smallest: boolean): Promise<{ value: T; ms: number }> {
      for (let attempt = 1; ; attempt++) {
        if (options.signal.aborted) throw options.signal.reason ?? new AbortedError('aborted')
        const uncapped = capped && smallest && strikes >= 3
        if (uncapped) {
          options.log?.warn('the smallest batch keeps running over the cap; running one batch without it', { capMs })
          await conn`reset statement_timeout`
        }
        const t0 = performance.now()
        try {
          const value = await fn()
          const ms = performance.now() - t0
          totals.longest = Math.max(totals.longest, ms)
          totals.batches++
          strikes = 0
          return { value, ms }
        } catch (err) {
          if (hitCap(err) && !options.signal.aborted) {
            totals.capped++
            if (smallest) strikes++
            throw new CapReached()
          }
          const code = (err as { code?: string }).code
          if ((code !== '55P03' && code !== '40P01') || attempt >= 5) throw err
          options.log?.warn(
            code === '55P03'
              ? 'a batch waited too long for a row lock; retrying it'
              : 'a batch was chosen to end a deadlock; retrying it',
            { attempt },
          )
          await sleep(50 * attempt, options.signal)
        } finally {
          if (uncapped) await conn`select set_config('statement_timeout', ${`${capMs}ms`}, false)`
        }
      }
    },
    result(): BatchTotals {
      return {
        rows: totals.rows,
        batches: totals.batches,
        longestTransactionMs: Math.round(totals.longest * 10) / 10,
        capped: totals.capped,
      }
    },
  }
}

/** The totals of several connections' batches as one: sums, and the longest transaction of any. */
export function mergeTotals(totals: readonly BatchTotals[]): BatchTotals {
  return {
    rows: totals.reduce((n, t) => n + t.rows, 0),
    batches: totals.reduce((n, t) => n + t.batches, 0),
    longestTransactionMs: Math.max(0, ...totals.map((t) => t.longestTransactionMs)),
    capped: totals.reduce((n, t) => n + (t.capped ?? 0), 0),
  }
}

/** The batch loop of one connection (see createBatcher). */
export type Batcher = ReturnType<typeof createBatcher>

/** One connection or several, as a list; throws when it is empty. */
export function connectionList(connections: ReservedSql | readonly ReservedSql[]): readonly ReservedSql[] {
  const list: readonly ReservedSql[] = Array.isArray(connections) ? connections : [connections as ReservedSql]
  if (list.length === 0) throw new TypeError('a batch engine needs at least one connection')
  return list
}

/**
 * Waits, on an extra connection, until it may run its next batch: resolves at once on the first connection, and on
 * the others once the database has no live traffic or `done()` says there is nothing left to claim.
 */
export type Turn = (done: () => boolean) => Promise<void>

/**
 * Runs `loop` on every connection at the same time, each with a batcher of its own (the cap set on its connection
 * while it runs), and merges their totals. The first error makes `stopped()` true, so the other loops end after
 * their current batch, and is thrown once every loop has ended. Each loop awaits `turn` before it claims work: the
 * first connection always runs, the others only while the database has no live traffic (see watchTraffic).
 */
export async function onEachConnection(
  conns: readonly ReservedSql[],
  options: BatchOptions,
  loop: (conn: ReservedSql, batcher: Batcher, stopped: () => boolean, turn: Turn) => Promise<void>,
): Promise<BatchTotals> {
  const lanes = conns.map((conn, index) => ({ conn, index, batcher: createBatcher(conn, options) }))
  // The sessions' own pids and the cap on each connection go in one round trip; a failure takes the caps off again,
  // as the connections go back to the pool.
  const [traffic] = await Promise.all([
    conns.length > 1 ? watchTraffic(conns, options) : undefined,
    ...lanes.map(({ batcher }) => batcher.start()),
  ]).catch(async (err: unknown) => {
    await Promise.all(lanes.map(({ batcher }) => batcher.finish()))
    throw err
  })
  const extrasAfter = options.extrasAfter?.catch(() => {})
  const totals = await inLanes(lanes, lanes.length, async ({ conn, index, batcher }, stopped) => {
    const turn: Turn =
      index === 0 || !traffic
        ? async () => {}
        : async (done) => {
            await extrasAfter
            await traffic.quiet(conn, () => stopped() || done())
          }
    try {
      await loop(conn, batcher, stopped, turn)
    } finally {
      await batcher.finish()
    }
    return batcher.result()
  })
  return mergeTotals(totals)
}

/** How often the extra connections look at the database's other sessions (250 ms). */
export const trafficCheckMs = 250

/**
 * Live traffic: client sessions on this database, other than this process's (the batch connections, the job's pool
 * and the runner's, all named `admin-jobs…:<pid>`), that ran a statement within the last 250 ms. While there is any,
 * the extra batch connections wait: a purge or a move takes the spare capacity of a quiet database and gives it back
 * as soon as the application needs it, so the application's statements wait no longer than beside one connection's
 * batches. Sessions of other roles count only where this role may read their state (pg_read_all_stats).
 */
async function watchTraffic(conns: readonly ReservedSql[], options: BatchOptions) {
  const own = await Promise.all(
    conns.map(async (conn) => (await conn<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!.pid),
  )
  let checkedAt = Number.NEGATIVE_INFINITY
  let live = false
  let reported = false
  let checking: Promise<boolean> | undefined
  const look = (conn: ReservedSql): Promise<boolean> => {
    if (performance.now() - checkedAt < trafficCheckMs) return Promise.resolve(live)
    checking ??= (async () => {
      const [row] = await conn<{ sessions: number }[]>`
        select count(*)::int as sessions from pg_stat_activity
        where datname = current_database() and backend_type = 'client backend' and pid <> all(${own}::int[])
          and application_name <> current_setting('application_name')
          and application_name not like ${`admin-jobs%:${process.pid}`}
          and (state = 'active' or state_change > clock_timestamp() - ${trafficCheckMs}::int * interval '1 millisecond')`
      live = (row?.sessions ?? 0) > 0
      checkedAt = performance.now()
      if (live && !reported) {
        reported = true
        options.log?.info(`${options.table}: live traffic on the database; extra connections wait while it lasts`, {
          sessions: row?.sessions,
        })
      }
      return live
    })().finally(() => {
      checking = undefined
    })
    return checking
  }
  return {
    async quiet(conn: ReservedSql, done: () => boolean): Promise<void> {
      while (!done() && (await look(conn))) await sleep(trafficCheckMs, options.signal)
    },
  }
}

/** Connections being reserved: `first` as soon as it is there (the pool's idle one, when it has one), `all` later. */
export interface Reserving {
  first: Promise<ReservedSql>
  /** Every connection; on a failure, releases those it got and throws. */
  all: Promise<ReservedSql[]>
}

/** Reserves `n` connections of the pool at once (the first is the pool's idle connection, when it has one). */
export function reserveConnections(sql: Sql, n: number): Reserving {
  const each = Array.from({ length: n }, () => sql.reserve())
  const all = Promise.allSettled(each).then((settled) => {
    const failed = settled.find((s) => s.status === 'rejected')
    if (!failed) return settled.map((s) => (s as PromiseFulfilledResult<ReservedSql>).value)
    for (const s of settled) if (s.status === 'fulfilled') s.value.release()
    throw failed.reason
  })
  // A failure reaches the caller through `all`; `first` failing alone must not be an unhandled rejection.
  each[0]!.catch(() => {})
  return { first: each[0]!, all }
}

/**
 * Session settings of batch connections: no wait for WAL flushes (a commit lost in a server crash only means a row is
 * handled again by the next run) and a 200 ms lock timeout (a batch meeting a lock held by live traffic gives way and
 * is retried, instead of queueing others behind it). With `genericPlans`, each statement is planned once, not at every
 * batch: a custom plan for a range at the end of an index looks up the index's actual end, stepping over the entries of
 * every row the earlier batches deleted (9 ms a batch, measured, after a few batches of a 1 % purge). `reset` takes
 * them off.
 */
export const batchSession = {
  async set(conns: readonly ReservedSql[], options: { genericPlans?: boolean } = {}): Promise<void> {
    const plans = options.genericPlans ? 'force_generic_plan' : 'auto'
    await Promise.all(
      conns.map(
        (conn) =>
          conn`select set_config('synchronous_commit', 'off', false), set_config('lock_timeout', '200ms', false),
            set_config('plan_cache_mode', ${plans}, false)`,
      ),
    )
  },
  async reset(conns: readonly ReservedSql[]): Promise<void> {
    await Promise.all(
      conns.map((conn) =>
        conn`reset synchronous_commit; reset lock_timeout; reset plan_cache_mode`.simple().catch(() => {}),
      ),
    )
  },
}

/** Scales a batch size towards the target time, at most doubling or quartering per step. */
export function adaptBatch(size: number, ms: number, targetMs: number, min: number, max: number): number {
  const factor = Math.min(2, Math.max(0.25, targetMs / Math.max(ms, 1)))
  return Math.round(Math.min(max, Math.max(min, size * factor)))
}

/**
 * Runs `statement` over keyset batches of one timestamp index (`column < before`, in index order): each batch starts
 * at the last key of the one before, so dead entries left by earlier batches are never walked again. The selection
 * handed to `statement` is `ctid = any($tids)`; the statement must re-check its own condition.
 */
export async function walkIndex(
  conn: ReservedSql,
  options: BatchOptions & { column: string; before: Date },
  statement: BatchStatement,
): Promise<BatchTotals> {
  await readTableLayout(conn, options.table)
  const table = conn(options.table)
  const column = conn(options.column)
  const targetMs = options.targetBatchMs ?? 100
  const batcher = createBatcher(conn, options)
  const progress = createProgress({ log: options.log, label: options.table, everyMs: options.progressEveryMs })
  const minLimit = 100
  let limit = 500
  // The last key travels as text so microseconds survive the round trip.
  let from: string | null = null
  await batcher.start()
  try {
    for (;;) {
      const after: PendingQuery<Row[]> = from === null ? conn`` : conn`and ${column} >= ${from}::timestamptz`
      let batch: Awaited<ReturnType<typeof walkBatch>>
      try {
        batch = await walkBatch(after)
      } catch (err) {
        if (!(err instanceof CapReached)) throw err
        limit = Math.max(minLimit, Math.floor(limit / 4))
        continue
      }
      const { value, ms } = batch
      batcher.totals.rows += value.n
      const expected = options.expectedRows ?? 0
      progress.update(batcher.totals.rows, expected > 0 ? Math.min(0.99, batcher.totals.rows / expected) : 0)
      const full = value.batch.found >= limit
      limit = adaptBatch(limit, ms, targetMs, minLimit, 200_000)
      if (!full || value.batch.last === null) break
      from = value.batch.last
    }
  } finally {
    await batcher.finish()
  }
  return batcher.result()

  function walkBatch(after: PendingQuery<Row[]>) {
    return batcher.run(async () => {
      const found = await conn<{ tids: string[]; last: string | null; found: number }[]>`
        select coalesce(array_agg(ctid::text), '{}') as tids, max(key)::text as last, count(*)::int as found from (
          select ctid, ${column} as key from ${table}
          where ${column} < ${options.before} ${after}
          order by ${column} limit ${limit}) batch`
      const batch = found[0]!
      if (batch.found === 0) return { batch, n: 0 }
      const n = processed(await statement(conn`ctid = any(${batch.tids}::tid[])`, conn))
      return { batch, n }
    }, limit <= minLimit)
  }
}
