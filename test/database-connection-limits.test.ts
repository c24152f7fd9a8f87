import {
  abandon,
  connect,
  createLogger,
  openDatabase,
  parseConfig,
  withFreshConnection,
} from '@admin-jobs/sdk/platform'
import type { Sql } from 'postgres'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { type Relay, startRelay } from './support/relay.ts'

// Every connection of the SDK has a bounded connect, a bounded statement and a bounded wait for an answer, so that a
// database that stops answering (traffic dropped, no reset) fails queries in bounded time instead of hanging them.
// The relay plays that database: freeze() keeps the TCP connection up and silent.
let db: TestDatabase
let relay: Relay
const pools: Sql[] = []

beforeAll(async () => {
  db = await createTestDatabase('connection_limits', { migrate: false })
  await db.sql`create table marks (note text not null)`
})

afterEach(async () => {
  for (const sql of pools.splice(0)) await abandon(sql)
  await relay?.close()
})

afterAll(async () => {
  await relay?.close()
})

async function throughRelay(options: Parameters<typeof connect>[1]) {
  relay = await startRelay(db.url)
  const sql = connect(relay.url, options)
  pools.push(sql)
  return sql
}

/** TCP sockets open in this process (the relay's own included). */
function tcpHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length
}

async function timed<T>(work: Promise<T>): Promise<{ ms: number; error: any }> {
  const started = Date.now()
  try {
    await work
    return { ms: Date.now() - started, error: undefined }
  } catch (error) {
    return { ms: Date.now() - started, error }
  }
}

describe('connection limits', () => {
  it('a query in flight when the database freezes fails with ETIMEDOUT after the statement limit plus the grace', async () => {
    const sql = await throughRelay({ statementTimeoutMs: 1_000, answerGraceMs: 500 })
    await sql`select 1`
    relay.freeze()
    const { ms, error } = await timed(sql`select 1`)
    expect(error?.code).toBe('ETIMEDOUT')
    expect(ms).toBeGreaterThanOrEqual(1_400)
    expect(ms).toBeLessThan(3_000)
  })

  it('a statement longer than its silence is answered, and one over the limit is cancelled by the server', async () => {
    const sql = await throughRelay({ statementTimeoutMs: 1_500, answerGraceMs: 1_000 })
    const [setting] = await sql`show statement_timeout`
    expect(setting!.statement_timeout).toBe('1500ms')
    // 1.2 s without a byte from the server is a statement at work, not a dead server.
    await expect(sql`select pg_sleep(1.2) as slept`).resolves.toHaveLength(1)
    const { error } = await timed(sql`select pg_sleep(5)`)
    expect(error?.code).toBe('57014')
  })

  it('a statement limit of 0 leaves statements unbounded', async () => {
    const sql = await throughRelay({ statementTimeoutMs: 0 })
    const [setting] = await sql`show statement_timeout`
    expect(setting!.statement_timeout).toBe('0')
  })

  it("a job's pool has no statement limit unless it is given one; small pools have a minute", async () => {
    const config = parseConfig({ DATABASE_URL: db.url })
    const log = createLogger({ write: () => {} })
    const unbounded = await openDatabase(config, { log, migrate: false })
    const bounded = await openDatabase(config, { log, migrate: false, statementTimeoutMs: 90 * 60_000 })
    const small = connect(db.url)
    pools.push(small)
    try {
      expect((await unbounded.sql`show statement_timeout`)[0]!.statement_timeout).toBe('0')
      expect((await bounded.sql`show statement_timeout`)[0]!.statement_timeout).toBe('90min')
      expect((await small`show statement_timeout`)[0]!.statement_timeout).toBe('1min')
    } finally {
      await unbounded.close()
      await bounded.close()
    }
  })

  it('an idle reserved connection outlives the answer deadline and still works', async () => {
    const sql = await throughRelay({ statementTimeoutMs: 500, answerGraceMs: 500 })
    const reserved = await sql.reserve()
    await reserved`select 1`
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    await expect(reserved`select 2 as n`).resolves.toEqual([{ n: 2 }])
    reserved.release()
  })

  it('runs many concurrent queries over a small pool, one request per connection at a time', async () => {
    const sql = await throughRelay({ max: 2 })
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => sql<{ n: number }[]>`select ${i}::int as n`))
    expect(results.map((r) => r[0]!.n)).toEqual(Array.from({ length: 40 }, (_, i) => i))
    // Transactions among plain queries: each BEGIN still reserves its connection.
    const mixed = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        i % 2
          ? sql.begin(async (tx) => (await tx<{ n: number }[]>`select ${i}::int as n`)[0]!.n)
          : sql<{ n: number }[]>`select ${i}::int as n`.then((r) => r[0]!.n),
      ),
    )
    expect(mixed).toEqual(Array.from({ length: 20 }, (_, i) => i))
    expect(relay.accepted).toBeLessThanOrEqual(2)
  })

  it('a new connection to a frozen database fails with CONNECT_TIMEOUT after the connect timeout', async () => {
    const sql = await throughRelay({ connectTimeoutMs: 1_000 })
    relay.freeze()
    const { ms, error } = await timed(sql`select 1`)
    expect(error?.code).toBe('CONNECT_TIMEOUT')
    expect(ms).toBeGreaterThanOrEqual(900)
    expect(ms).toBeLessThan(2_500)
  })

  it('abandon fails the queries of a frozen pool at once and destroys its sockets', async () => {
    const sql = await throughRelay({})
    await sql`select 1`
    const before = tcpHandles()
    relay.freeze()
    const pending = timed(sql`select 1`)
    await new Promise((resolve) => setTimeout(resolve, 100))
    const started = Date.now()
    await abandon(sql)
    const { error } = await pending
    expect(error?.code).toBe('CONNECTION_DESTROYED')
    expect(Date.now() - started).toBeLessThan(500)
    await expect.poll(tcpHandles, { timeout: 500, interval: 20 }).toBe(before - 1)
  })

  it('a pool ended politely against a frozen database lets its sockets go within a second', async () => {
    const sql = await throughRelay({})
    await sql`select 1`
    const before = tcpHandles()
    relay.freeze()
    const { ms } = await timed(sql.end({ timeout: 0.2 }))
    expect(ms).toBeLessThan(1_000)
    // The frozen relay never sees the goodbye, so only this side can tell: its socket is gone.
    await expect.poll(tcpHandles, { timeout: 2_000, interval: 100 }).toBe(before - 1)
  })
})

describe('withFreshConnection', () => {
  it('returns what the work returns and closes its connection', async () => {
    relay = await startRelay(db.url)
    const rows = await withFreshConnection(
      relay.url,
      { deadlineMs: 3_000 },
      (sql) => sql`insert into marks values ('fresh') returning note`,
    )
    expect(rows).toEqual([{ note: 'fresh' }])
    await expect.poll(() => relay.open, { timeout: 2_000 }).toBe(0)
    expect(await db.sql`select note from marks where note = 'fresh'`).toHaveLength(1)
  })

  it('gives up on a frozen database within its deadline, and nothing is written', async () => {
    relay = await startRelay(db.url)
    relay.freeze()
    const { ms, error } = await timed(
      withFreshConnection(relay.url, { deadlineMs: 1_500 }, (sql) => sql`insert into marks values ('frozen')`),
    )
    expect(error).toBeInstanceOf(Error)
    expect(error.message).toContain('1500 ms')
    expect(ms).toBeGreaterThanOrEqual(1_400)
    expect(ms).toBeLessThan(2_500)
    // Thawed, the relay reads what the client left behind, its goodbye included, and closes that connection.
    relay.thaw()
    await expect.poll(() => relay.open, { timeout: 2_000 }).toBe(0)
    expect(await db.sql`select note from marks where note = 'frozen'`).toHaveLength(0)
  })

  it('gives up when the database freezes after the connection is made', async () => {
    relay = await startRelay(db.url)
    const { ms, error } = await timed(
      withFreshConnection(relay.url, { deadlineMs: 1_500 }, async (sql) => {
        await sql`select 1`
        relay.freeze()
        await sql`insert into marks values ('late')`
      }),
    )
    expect(error).toBeInstanceOf(Error)
    expect(ms).toBeLessThan(2_500)
  })

  it('rejects with the database error as its cause when the work fails', async () => {
    const { error } = await timed(withFreshConnection(db.url, {}, (sql) => sql`select * from no_such_table`))
    expect(error.message).toContain('fresh connection')
    expect(error.cause?.code).toBe('42P01')
  })
})
