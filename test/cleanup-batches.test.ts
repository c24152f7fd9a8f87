import { createLogger } from '@admin-jobs/sdk/platform'
import postgres, { type PendingQuery, type ReservedSql, type Row, type Sql } from 'postgres'
import { describe, expect, it } from 'vitest'
import {
  adaptBatch,
  batchSession,
  keyAt,
  reserveConnections,
  shareBelow,
  sweepHeap,
  walkIndex,
  walkKeyRanges,
} from '#cleanup'
import { createTestDatabase } from './support/db.ts'

// A batch statement on the engine's connection whose time grows with its batch: it deletes the selected rows and
// then spends `msPerRow` per deleted row on the server, all in its one transaction.
const slow =
  (table: string, msPerRow = 2) =>
  (selection: PendingQuery<Row[]>, conn: ReservedSql) =>
    conn`
  with gone as (delete from ${conn(table)} where ${selection} returning 1),
  batch as (select count(*)::int as n from gone)
  select n, pg_sleep(n * ${msPerRow / 1000}::float8) from batch`

// A batch statement that adds one to each selected row's `hits` and then spends `msPerRow` per row: a row any two
// batches both selected ends with two hits.
const touch =
  (table: string, msPerRow = 0) =>
  (selection: PendingQuery<Row[]>, conn: ReservedSql) =>
    conn`
  with hit as (update ${conn(table)} set hits = hits + 1 where ${selection} returning 1),
  batch as (select count(*)::int as n from hit)
  select n, pg_sleep(n * ${msPerRow / 1000}::float8) from batch`

/** A fresh database with a table `wide` of `rows` 1.5 kB rows (five a page), each with a `hits` counter at 0. */
async function wideTable(label: string, rows: number) {
  const db = await createTestDatabase(label)
  await db.sql`create table wide (id int, hits int not null default 0, filler text)`
  await db.sql`insert into wide (id, filler) select g, repeat('x', 1500) from generate_series(1, ${rows}) g`
  return db
}

async function reserve(sql: Sql, n: number): Promise<ReservedSql[]> {
  return Promise.all(Array.from({ length: n }, () => sql.reserve()))
}

describe('batch engines', () => {
  it('scale a batch towards its target, at most doubling or quartering per step, within bounds', () => {
    expect(adaptBatch(100, 50, 100, 10, 1000)).toBe(200)
    expect(adaptBatch(100, 10, 100, 10, 1000)).toBe(200)
    expect(adaptBatch(100, 1000, 100, 10, 1000)).toBe(25)
    expect(adaptBatch(20, 1000, 100, 10, 1000)).toBe(10)
    expect(adaptBatch(800, 1, 100, 10, 1000)).toBe(1000)
  })

  it('roll a heap batch back at the cap and retry it smaller, so every row is still processed once', async () => {
    const db = await createTestDatabase('batches_heap')
    // Five 1.5 kB rows per page at 4 ms a row: the first 32-page batch (160 rows, 640 ms) is over a 500 ms cap, a
    // 16-page batch (320 ms) is not.
    await db.sql`create table wide (id int, filler text)`
    await db.sql`insert into wide select g, repeat('x', 1500) from generate_series(1, 600) g`
    const conn = await db.sql.reserve()
    try {
      const totals = await sweepHeap(
        conn,
        { table: 'wide', signal: new AbortController().signal, targetBatchMs: 100, capMs: 500 },
        slow('wide', 4),
      )
      expect(totals.rows).toBe(600)
      expect((await db.sql`select count(*)::int as n from wide`)[0]!.n).toBe(0)
      expect(totals.capped).toBeGreaterThan(0)
      // Server time of the slowest committed batch stays under the cap (plus the round trip).
      expect(totals.longestTransactionMs).toBeLessThan(500 + 300)
      // The cap is taken off the connection afterwards.
      const [setting] = await conn`show statement_timeout`
      expect(setting!.statement_timeout).toBe('0')
    } finally {
      conn.release()
    }
  })

  it('run the smallest batch without the cap after three strikes, so a run always makes progress', async () => {
    const db = await createTestDatabase('batches_strikes')
    await db.sql`create table wide (id int)`
    await db.sql`insert into wide select generate_series(1, 1000)`
    const conn = await db.sql.reserve()
    try {
      // The whole table fits one 16-page batch (1,000 rows, ~2 s), far over a 50 ms cap.
      const totals = await sweepHeap(
        conn,
        { table: 'wide', signal: new AbortController().signal, targetBatchMs: 20, capMs: 50 },
        slow('wide'),
      )
      expect(totals.rows).toBe(1000)
      expect(totals.capped).toBeGreaterThanOrEqual(3)
    } finally {
      conn.release()
    }
  })

  it('roll an index batch back at the cap and retry it smaller', async () => {
    const db = await createTestDatabase('batches_index')
    await db.sql`create table events (at timestamptz not null)`
    await db.sql`create index on events (at)`
    await db.sql`insert into events select now() - g * interval '1 second' from generate_series(1, 1000) g`
    const conn = await db.sql.reserve()
    try {
      const totals = await walkIndex(
        conn,
        {
          table: 'events',
          column: 'at',
          before: new Date(Date.now() + 60_000),
          signal: new AbortController().signal,
          targetBatchMs: 100,
          capMs: 500,
        },
        slow('events'),
      )
      expect(totals.rows).toBe(1000)
      expect((await db.sql`select count(*)::int as n from events`)[0]!.n).toBe(0)
      // The first batch of 500 rows (~1 s) is over the cap; the walk shrinks to 125 and carries on.
      expect(totals.capped).toBeGreaterThan(0)
    } finally {
      conn.release()
    }
  })

  it('map shares of rows to keys and back through histogram buckets', () => {
    const axis = { bounds: [0, 100, 1000], rows: 2000 }
    expect(keyAt(axis, 0)).toBe(0)
    expect(keyAt(axis, 0.25)).toBe(50)
    expect(keyAt(axis, 0.75)).toBe(550)
    expect(keyAt(axis, 1)).toBe(1000)
    expect(shareBelow(axis, -5)).toBe(0)
    expect(shareBelow(axis, 50)).toBe(0.25)
    expect(shareBelow(axis, 550)).toBe(0.75)
    expect(shareBelow(axis, 5000)).toBe(1)
  })

  for (const [stats, connections] of [
    ['with planner statistics', 1],
    ['without statistics', 1],
    ['with planner statistics', 2],
    ['without statistics', 2],
  ] as const) {
    it(`walk key ranges that tile every key below the cutoff exactly, ${stats}, on ${connections} connection(s)`, async () => {
      const db = await createTestDatabase('batches_keys')
      await db.sql`create table events (id int, at timestamptz)`
      await db.sql`create index on events (at)`
      const cutoff = new Date('2026-06-15T12:00:00.000Z')
      // Keys a microsecond apart around the cutoff, runs of equal keys, NULLs, and a long tail far in the past.
      await db.sql`
        insert into events select g, case
          when g % 97 = 0 then null
          when g % 5 = 0 then ${cutoff}::timestamptz - (g % 7) * interval '1 hour'
          else ${cutoff}::timestamptz - (g - 2500) * interval '1 microsecond' - (g % 3) * interval '1 day' end
        from generate_series(1, 5000) g`
      if (stats === 'with planner statistics') await db.sql`analyze events`
      const [{ n: expected }] = await db.sql`select count(*)::int as n from events where at < ${cutoff}`
      const [{ n: kept }] = await db.sql`select count(*)::int as n from events where not (at < ${cutoff}) or at is null`
      const conns = await reserve(db.sql, connections)
      const used = new Set<ReservedSql>()
      try {
        const totals = await walkKeyRanges(
          conns,
          {
            table: 'events',
            ranges: [{ column: 'at', before: cutoff }],
            signal: new AbortController().signal,
            initialRows: 300,
          },
          (selection, conn) => {
            used.add(conn)
            // 20 ms a batch, so a second connection still setting up finds ranges left to claim.
            return conn`
              with gone as (delete from events where ${selection} returning 1)
              select count(*)::int as n, pg_sleep(0.02) from gone`
          },
        )
        expect(totals.rows).toBe(expected)
        expect(totals.batches).toBeGreaterThan(1)
        expect(used.size).toBe(connections)
        expect((await db.sql`select count(*)::int as n from events where at < ${cutoff}`)[0]!.n).toBe(0)
        expect((await db.sql`select count(*)::int as n from events`)[0]!.n).toBe(kept)
      } finally {
        for (const conn of conns) conn.release()
      }
    })
  }

  it('walk the key ranges of two columns on two connections, every row removable by either deleted once', async () => {
    const db = await createTestDatabase('batches_keys_two')
    await db.sql`create table grants (id int, expires_at timestamptz, revoked_at timestamptz)`
    await db.sql`create index on grants (expires_at)`
    await db.sql`create index on grants (revoked_at)`
    const cutoff = new Date('2026-06-15T12:00:00.000Z')
    // 4000 rows: a quarter expired, one in ten revoked before the cutoff (some of them expired too), the rest live.
    await db.sql`
      insert into grants select g,
        ${cutoff}::timestamptz + case when g % 4 = 0 then -1 else 1 end * (g % 500 + 1) * interval '1 minute',
        case when g % 10 = 0 then ${cutoff}::timestamptz - (g % 300 + 1) * interval '1 minute' end
      from generate_series(1, 4000) g`
    await db.sql`analyze grants`
    const removable = db.sql`(expires_at < ${cutoff} or revoked_at < ${cutoff})`
    const [{ n: expected }] = await db.sql`select count(*)::int as n from grants where ${removable}`
    const conns = await reserve(db.sql, 2)
    const used = new Set<ReservedSql>()
    try {
      const totals = await walkKeyRanges(
        conns,
        {
          table: 'grants',
          ranges: [
            { column: 'expires_at', before: cutoff },
            { column: 'revoked_at', before: cutoff },
          ],
          signal: new AbortController().signal,
          initialRows: 200,
        },
        (selection, conn) => {
          used.add(conn)
          return conn`
            with gone as (delete from grants where ${selection} and ${removable} returning 1)
            select count(*)::int as n, pg_sleep(0.01) from gone`
        },
      )
      expect(totals.rows).toBe(expected)
      expect(used.size).toBe(2)
      expect((await db.sql`select count(*)::int as n from grants where ${removable}`)[0]!.n).toBe(0)
      expect((await db.sql`select count(*)::int as n from grants`)[0]!.n).toBe(4000 - expected)
    } finally {
      for (const conn of conns) conn.release()
    }
  })

  it('hold the extra connections back until the work beside the batches is done', async () => {
    const db = await wideTable('batches_extras_after', 1000)
    const conns = await reserve(db.sql, 2)
    const starts = new Map<ReservedSql, number[]>(conns.map((c) => [c, []]))
    let doneAt = Number.POSITIVE_INFINITY
    const beside = new Promise<void>((resolve) =>
      setTimeout(() => {
        doneAt = performance.now()
        resolve()
      }, 300),
    )
    try {
      // A thousand rows at 1 ms each: about a second on one connection.
      const totals = await sweepHeap(
        conns,
        { table: 'wide', signal: new AbortController().signal, targetBatchMs: 50, extrasAfter: beside },
        (selection, conn) => {
          starts.get(conn)!.push(performance.now())
          return touch('wide', 1)(selection, conn)
        },
      )
      expect(totals.rows).toBe(1000)
      const [lead, extra] = conns.map((c) => starts.get(c)!)
      expect(Math.min(...lead!)).toBeLessThan(doneAt)
      expect(extra!.length, 'batches of the extra connection once the work beside was done').toBeGreaterThan(0)
      expect(Math.min(...extra!)).toBeGreaterThanOrEqual(doneAt)
    } finally {
      for (const conn of conns) conn.release()
    }
  })

  it("reserve the pool's open connection first, and set and reset the batch settings, generic plans included", async () => {
    const db = await createTestDatabase('batches_session')
    const pool = postgres(db.url, { max: 3, onnotice: () => {} })
    try {
      const [{ pid: open }] = await pool<{ pid: number }[]>`select pg_backend_pid() as pid`
      const reserving = reserveConnections(pool, 2)
      const first = await reserving.first
      expect((await first<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!.pid).toBe(open)
      const conns = await reserving.all
      expect(conns[0]).toBe(first)
      const settings = (conn: ReservedSql) =>
        conn<{ plans: string; commit: string; lock: string }[]>`
          select current_setting('plan_cache_mode') as plans, current_setting('synchronous_commit') as commit,
            current_setting('lock_timeout') as lock`
      await batchSession.set(conns, { genericPlans: true })
      for (const conn of conns)
        expect((await settings(conn))[0]).toEqual({ plans: 'force_generic_plan', commit: 'off', lock: '200ms' })
      await batchSession.reset(conns)
      for (const conn of conns) expect((await settings(conn))[0]).toEqual({ plans: 'auto', commit: 'on', lock: '0' })
      for (const conn of conns) conn.release()
    } finally {
      await pool.end()
    }
  })

  it('roll a key range back at the cap and retry it smaller', async () => {
    const db = await createTestDatabase('batches_keys_cap')
    await db.sql`create table events (at timestamptz not null)`
    await db.sql`create index on events (at)`
    await db.sql`insert into events select now() - g * interval '1 second' from generate_series(1, 1000) g`
    await db.sql`analyze events`
    const conn = await db.sql.reserve()
    try {
      const totals = await walkKeyRanges(
        conn,
        {
          table: 'events',
          ranges: [{ column: 'at', before: new Date(Date.now() + 60_000) }],
          signal: new AbortController().signal,
          targetBatchMs: 100,
          capMs: 500,
          initialRows: 500,
        },
        slow('events'),
      )
      expect(totals.rows).toBe(1000)
      expect((await db.sql`select count(*)::int as n from events`)[0]!.n).toBe(0)
      // The first range of about 500 rows (~1 s) is over the cap; the walk shrinks it and carries on.
      expect(totals.capped).toBeGreaterThan(0)
      expect(totals.longestTransactionMs).toBeLessThan(500 + 300)
    } finally {
      conn.release()
    }
  })

  it('sweep the heap on two connections at once, every row in exactly one batch, ranges capped on either redone', async () => {
    const db = await createTestDatabase('batches_heap_two')
    // Five 1.5 kB rows per page at 3 ms a row: a 32-page batch (~480 ms) is over a 300 ms cap, a 16-page one is not.
    await db.sql`create table wide (id int, hits int not null default 0, filler text)`
    await db.sql`insert into wide (id, filler) select g, repeat('x', 1500) from generate_series(1, 800) g`
    const conns = await reserve(db.sql, 2)
    const used = new Set<ReservedSql>()
    try {
      const totals = await sweepHeap(
        conns,
        { table: 'wide', signal: new AbortController().signal, targetBatchMs: 100, capMs: 300 },
        (selection, conn) => {
          used.add(conn)
          return touch('wide', 3)(selection, conn)
        },
      )
      const hits = await db.sql<{ hits: number; n: number }[]>`
        select hits, count(*)::int as n from wide group by hits order by hits`
      expect(hits).toEqual([{ hits: 1, n: 800 }])
      expect(totals.rows).toBe(800)
      expect(totals.pages).toBe(160)
      expect(used.size).toBe(2)
      expect(totals.capped).toBeGreaterThanOrEqual(2)
      for (const conn of conns) expect((await conn`show statement_timeout`)[0]!.statement_timeout).toBe('0')
    } finally {
      for (const conn of conns) conn.release()
    }
  })

  it('leave the extra connection idle while another session works on the database, and take it up once it stops', async () => {
    const db = await wideTable('batches_traffic', 2000)
    // The application: one session running short statements back to back, for the first half second of the sweep.
    // Each runs 100 ms on the server, so the session looks busy even when this process is slow to send the next one.
    const app = postgres(db.url, { max: 1, connection: { application_name: 'app' }, onnotice: () => {} })
    let busy = true
    let quietSince = Number.POSITIVE_INFINITY
    const traffic = (async () => {
      while (busy) await app`select pg_sleep(0.1)`
      quietSince = performance.now()
    })()
    setTimeout(() => {
      busy = false
    }, 500)
    const lines: string[] = []
    const log = createLogger({ write: (_stream, line) => lines.push(line) })
    const conns = await reserve(db.sql, 2)
    const starts = new Map<ReservedSql, number[]>(conns.map((c) => [c, []]))
    try {
      // Two thousand rows at 1 ms each: about two seconds on one connection.
      const totals = await sweepHeap(
        conns,
        { table: 'wide', signal: new AbortController().signal, targetBatchMs: 50, log },
        (selection, conn) => {
          starts.get(conn)!.push(performance.now())
          return touch('wide', 1)(selection, conn)
        },
      )
      const hits = await db.sql<{ hits: number; n: number }[]>`
        select hits, count(*)::int as n from wide group by hits order by hits`
      expect(hits).toEqual([{ hits: 1, n: 2000 }])
      expect(totals.rows).toBe(2000)
      const [lead, extra] = conns.map((c) => starts.get(c)!)
      expect(lead!.length).toBeGreaterThan(0)
      expect(extra!.length, 'batches of the extra connection once the traffic stopped').toBeGreaterThan(0)
      expect(Math.min(...extra!)).toBeGreaterThan(quietSince)
      expect(lines.join('\n')).toMatch(/live traffic on the database; extra connections wait while it lasts/)
    } finally {
      busy = false
      await traffic
      await app.end()
      for (const conn of conns) conn.release()
    }
  })

  it('stop every connection of a sweep at the first error and throw it once all have stopped', async () => {
    const db = await wideTable('batches_heap_error', 5000)
    const conns = await reserve(db.sql, 2)
    let started = 0
    let failed = false
    let startedAfterFailure = 0
    try {
      const sweep = sweepHeap(
        conns,
        { table: 'wide', signal: new AbortController().signal, targetBatchMs: 20 },
        async (selection, conn) => {
          if (failed) startedAfterFailure++
          // The fourth batch fails (a poison row, say); the others take a few ms each.
          if (++started === 4) {
            try {
              return await conn`select 1 / 0 as n`
            } finally {
              failed = true
            }
          }
          return await touch('wide', 0.5)(selection, conn)
        },
      )
      await expect(sweep).rejects.toThrow(/division by zero/)
      expect(failed).toBe(true)
      // The other connection may have had its next batch under way as the error arrived; none starts after that.
      expect(startedAfterFailure).toBeLessThanOrEqual(1)
      const [{ untouched }] = await db.sql`select count(*) filter (where hits = 0)::int as untouched from wide`
      expect(untouched).toBeGreaterThan(0)
      for (const conn of conns) expect((await conn`show statement_timeout`)[0]!.statement_timeout).toBe('0')
    } finally {
      for (const conn of conns) conn.release()
    }
  })

  it('sweep only the pages it is given', async () => {
    const db = await createTestDatabase('batches_pages')
    await db.sql`create table wide (id int, filler text)`
    // Five rows a page: pages 0–19 hold ids 1–100.
    await db.sql`insert into wide select g, repeat('x', 1500) from generate_series(1, 100) g`
    const conn = await db.sql.reserve()
    try {
      const totals = await sweepHeap(
        conn,
        { table: 'wide', signal: new AbortController().signal, pages: { from: 4, to: 8 } },
        (selection, c) => c`delete from wide where ${selection}`,
      )
      const left = (await db.sql`select id from wide order by id`).map((r) => r.id)
      expect(totals.rows).toBe(20)
      expect(left).toEqual([...Array(100).keys()].map((i) => i + 1).filter((id) => id <= 20 || id > 40))
    } finally {
      conn.release()
    }
  })
})

describe('batch engines on a table they cannot sweep in full', () => {
  it('refuse a partitioned table or an inheritance parent instead of reporting nothing to do', async () => {
    const db = await createTestDatabase('batches_layout')
    await db.sql`create table parted (at timestamptz not null) partition by range (at)`
    await db.sql`create table parted_all partition of parted for values from (minvalue) to (maxvalue)`
    await db.sql`create table parent (at timestamptz not null)`
    await db.sql`create table child () inherits (parent)`
    await db.sql`insert into parted select now() - g * interval '1 hour' from generate_series(1, 100) g`
    await db.sql`insert into child select now() - g * interval '1 hour' from generate_series(1, 100) g`
    const conn = await db.sql.reserve()
    try {
      const options = { signal: new AbortController().signal }
      const remove = (table: string) => (selection: PendingQuery<Row[]>, c: ReservedSql) =>
        c`delete from ${c(table)} where ${selection}`
      await expect(sweepHeap(conn, { ...options, table: 'parted' }, remove('parted'))).rejects.toThrow(
        /public\.parted is partitioned by range \(at\)/,
      )
      await expect(
        walkIndex(conn, { ...options, table: 'parent', column: 'at', before: new Date() }, remove('parent')),
      ).rejects.toThrow(/public\.parent is a parent of inheritance children \(child\)/)
      expect((await db.sql`select count(*)::int as n from parted`)[0]!.n).toBe(100)
      expect((await db.sql`select count(*)::int as n from parent`)[0]!.n).toBe(100)
    } finally {
      conn.release()
    }
  })
})
