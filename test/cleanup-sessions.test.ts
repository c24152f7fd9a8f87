import { createLogger } from '@admin-jobs/sdk/platform'
import { beforeAll, describe, expect, it } from 'vitest'
import { purgeInBatches } from '#cleanup'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript, startScript } from './support/run.ts'

let db: TestDatabase
const now = '2026-06-15T12:00:00.000Z'
const env = () => ({ DATABASE_URL: db.url, ADMIN_JOBS_NOW: now })

beforeAll(async () => {
  db = await createTestDatabase('sessions')
})

/** Edge cases around the cutoffs; `keep` says whether the row must survive. */
const edgeCases = [
  {
    name: 'expired a microsecond ago',
    expires: `'${now}'::timestamptz - interval '1 microsecond'`,
    revoked: 'null',
    keep: false,
  },
  { name: 'expires exactly now', expires: `'${now}'::timestamptz`, revoked: 'null', keep: true },
  {
    name: 'expires in a millisecond',
    expires: `'${now}'::timestamptz + interval '1 millisecond'`,
    revoked: 'null',
    keep: true,
  },
  {
    name: 'revoked 25 hours ago',
    expires: `'${now}'::timestamptz + interval '1 day'`,
    revoked: `'${now}'::timestamptz - interval '25 hours'`,
    keep: false,
  },
  {
    name: 'revoked 23 hours ago',
    expires: `'${now}'::timestamptz + interval '1 day'`,
    revoked: `'${now}'::timestamptz - interval '23 hours'`,
    keep: true,
  },
  {
    name: 'revoked exactly 24 hours ago',
    expires: `'${now}'::timestamptz + interval '1 day'`,
    revoked: `'${now}'::timestamptz - interval '24 hours'`,
    keep: true,
  },
  {
    name: 'revoked 24 hours and a microsecond ago',
    expires: `'${now}'::timestamptz + interval '1 day'`,
    revoked: `'${now}'::timestamptz - interval '24 hours 1 microsecond'`,
    keep: false,
  },
  { name: 'never revoked, live', expires: `'${now}'::timestamptz + interval '30 days'`, revoked: 'null', keep: true },
  {
    name: 'expired and long revoked',
    expires: `'${now}'::timestamptz - interval '10 days'`,
    revoked: `'${now}'::timestamptz - interval '30 days'`,
    keep: false,
  },
  {
    name: 'revoked in the future (clock skew)',
    expires: `'${now}'::timestamptz + interval '1 day'`,
    revoked: `'${now}'::timestamptz + interval '1 hour'`,
    keep: true,
  },
]

async function seedEdgeCases() {
  await db.sql`truncate sessions`
  for (const [i, c] of edgeCases.entries()) {
    await db.sql.unsafe(
      `insert into sessions (user_id, user_agent, expires_at, revoked_at) values ($1, $2, ${c.expires}, ${c.revoked})`,
      [i, c.name],
    )
  }
}

/** `rows` sessions of which `share` are expired, scattered over the heap. */
async function seedBulk(rows: number, share: number) {
  await db.sql`truncate sessions`
  await db.sql`
    insert into sessions (user_id, expires_at)
    select g, case when abs(hashint4(g)) % 1000 < ${share * 1000}
      then ${now}::timestamptz - interval '1 hour' else ${now}::timestamptz + interval '1 hour' end
    from generate_series(1, ${rows}::int) g`
  await db.sql`analyze sessions`
  const [{ n }] = await db.sql`select count(*)::int as n from sessions where expires_at < ${now}::timestamptz`
  return n as number
}

/**
 * `rows` sessions of which `share` are expired, all in the first or the last pages of the heap (inserted first or
 * last), plus `stragglers` expired ones among the very first rows.
 */
async function seedGathered(rows: number, share: number, where: 'start' | 'end', stragglers = 0) {
  await db.sql`truncate sessions`
  const cut = where === 'start' ? Math.round(rows * share) : rows - Math.round(rows * share)
  const removable = where === 'start' ? db.sql`g <= ${cut}` : db.sql`(g > ${cut} or g <= ${stragglers})`
  await db.sql`
    insert into sessions (user_id, expires_at)
    select g, case when ${removable}
      then ${now}::timestamptz - (g % 1000) * interval '1 minute' else ${now}::timestamptz + interval '1 hour' end
    from generate_series(1, ${rows}::int) g`
  await db.sql`vacuum analyze sessions`
  const [{ n, pages }] = await db.sql`
    select count(*) filter (where expires_at < ${now}::timestamptz)::int as n,
      (pg_relation_size('sessions') / 8192)::int as pages from sessions`
  return { removable: n as number, pages: pages as number }
}

async function lastRun() {
  const [run] = await db.sql`select * from jobs.runs where job = 'cleanup/sessions' order by id desc limit 1`
  return run
}

describe('cleanup/sessions', () => {
  it('deletes exactly the expired and the long-revoked sessions at the cutoff edges', async () => {
    await seedEdgeCases()
    const result = await runScript('scripts/cleanup/sessions.ts', { env: env() })
    expect(result.code, result.output).toBe(0)
    const left = (await db.sql`select user_agent from sessions order by user_id`).map((r) => r.user_agent)
    expect(left).toEqual(edgeCases.filter((c) => c.keep).map((c) => c.name))
    const run = await lastRun()
    expect(run.status).toBe('succeeded')
    expect(run.stats.deleted).toBe(edgeCases.filter((c) => !c.keep).length)
    expect(run.stats.longestTransactionMs).toBeGreaterThanOrEqual(0)
  })

  it('changes nothing in a dry run and reports exact counts with the oldest and newest timestamps', async () => {
    await seedEdgeCases()
    const result = await runScript('scripts/cleanup/sessions.ts', { args: ['--dry-run'], env: env() })
    expect(result.code, result.output).toBe(0)
    const [{ n }] = await db.sql`select count(*)::int as n from sessions`
    expect(n).toBe(edgeCases.length)
    const run = await lastRun()
    expect(run.dry_run).toBe(true)
    expect(run.stats.deleted).toBe(0)
    expect(run.stats.wouldDelete).toBe(4)
    expect(run.stats.reasons.expires_at).toEqual({
      rows: 2,
      oldest: '2026-06-05T12:00:00.000Z',
      newest: '2026-06-15T11:59:59.999Z',
    })
    expect(run.stats.reasons.revoked_at.rows).toBe(3)
    expect(run.stats.reasons.revoked_at.oldest).toBe('2026-05-16T12:00:00.000Z')
    expect(result.stdout).toContain('would delete 4 of 10 sessions')
  })

  it('sweeps heap ranges when half the table goes and walks the index when one percent does', async () => {
    const half = await seedBulk(20_000, 0.5)
    let result = await runScript('scripts/cleanup/sessions.ts', { env: env() })
    expect(result.code, result.output).toBe(0)
    let run = await lastRun()
    expect(run.stats).toMatchObject({ strategy: 'heap', deleted: half })
    const [{ n: left }] = await db.sql`select count(*)::int as n from sessions`
    expect(left).toBe(20_000 - half)

    const few = await seedBulk(20_000, 0.01)
    result = await runScript('scripts/cleanup/sessions.ts', { env: env() })
    expect(result.code, result.output).toBe(0)
    run = await lastRun()
    expect(run.stats).toMatchObject({ strategy: 'index', deleted: few })
    const [{ n: stale }] = await db.sql`select count(*)::int as n from sessions where expires_at < ${now}::timestamptz`
    expect(stale).toBe(0)
  })

  it('cleans a table where nearly every row is expired without operator action', async () => {
    const removable = await seedBulk(2_000, 0.97)
    const result = await runScript('scripts/cleanup/sessions.ts', { env: env() })
    expect(result.code, result.output).toBe(0)
    expect((await lastRun()).stats.deleted).toBe(removable)
    const [{ n }] = await db.sql`select count(*)::int as n from sessions`
    expect(n).toBe(2_000 - removable)
  })

  it('refuses more than an operator-set share (SESSIONS_MAX_FRACTION) unless --max-fraction allows it', async () => {
    const removable = await seedBulk(2_000, 0.97)
    const capped = { ...env(), SESSIONS_MAX_FRACTION: '90%' }
    const refused = await runScript('scripts/cleanup/sessions.ts', { env: capped })
    expect(refused.code, refused.output).toBe(1)
    expect(refused.output).toContain('refusing to delete')
    expect(refused.output).toContain('--max-fraction')
    expect(refused.output).toContain('SESSIONS_MAX_FRACTION')
    const [{ n }] = await db.sql`select count(*)::int as n from sessions`
    expect(n).toBe(2_000)
    expect((await lastRun()).status).toBe('failed')

    const allowed = await runScript('scripts/cleanup/sessions.ts', { args: ['--max-fraction', '0.99'], env: capped })
    expect(allowed.code, allowed.output).toBe(0)
    expect((await lastRun()).stats.deleted).toBe(removable)
  })

  it('rejects a malformed SESSIONS_MAX_FRACTION with exit 2', async () => {
    await seedBulk(2_000, 0.97)
    const bad = await runScript('scripts/cleanup/sessions.ts', { env: { ...env(), SESSIONS_MAX_FRACTION: '150%' } })
    expect(bad.code, bad.output).toBe(2)
    expect(bad.output).toContain('SESSIONS_MAX_FRACTION')
    const [{ n }] = await db.sql`select count(*)::int as n from sessions`
    expect(n).toBe(2_000)
  })

  it('runs its batches on as many connections as CLEANUP_CONNECTIONS says, and rejects a value out of range with exit 2', async () => {
    await seedBulk(2_000, 0.97)
    const bad = await runScript('scripts/cleanup/sessions.ts', { env: { ...env(), CLEANUP_CONNECTIONS: '9' } })
    expect(bad.code, bad.output).toBe(2)
    expect(bad.output).toContain('CLEANUP_CONNECTIONS')
    expect((await db.sql`select count(*)::int as n from sessions`)[0]!.n).toBe(2_000)
    const removable = await seedBulk(20_000, 0.5)
    const one = await runScript('scripts/cleanup/sessions.ts', { env: { ...env(), CLEANUP_CONNECTIONS: '1' } })
    expect(one.code, one.output).toBe(0)
    const [run] = await db.sql`select stats from jobs.runs where job = 'cleanup/sessions' order by id desc limit 1`
    expect(run!.stats).toMatchObject({ deleted: removable, strategy: 'heap' })
    expect((await db.sql`select count(*)::int as n from sessions where expires_at < ${now}::timestamptz`)[0]!.n).toBe(0)
  })

  it("measures expiry by the database's clock when nothing pins the clock", async () => {
    await db.sql`truncate sessions`
    // Relative to the database's now(): one expired a minute ago, one expiring in a minute.
    await db.sql`
      insert into sessions (user_id, expires_at)
      values (1, now() - interval '1 minute'), (2, now() + interval '1 minute')`
    const result = await runScript('scripts/cleanup/sessions.ts', { env: { DATABASE_URL: db.url } })
    expect(result.code, result.output).toBe(0)
    const rows = await db.sql<{ future: boolean }[]>`select expires_at > now() as future from sessions`
    expect(rows).toEqual([{ future: true }])
  })

  it('lets only one of two concurrent runs purge, and together they delete each row once', async () => {
    const removable = await seedBulk(20_000, 0.5)
    const [a, b] = await Promise.all([
      startScript('scripts/cleanup/sessions.ts', { env: env() }).done,
      startScript('scripts/cleanup/sessions.ts', { env: env() }).done,
    ])
    expect(a.code, a.output).toBe(0)
    expect(b.code, b.output).toBe(0)
    const runs =
      await db.sql`select status, stats from jobs.runs where job = 'cleanup/sessions' order by id desc limit 2`
    const purged = runs.filter((r) => r.status === 'succeeded').reduce((sum, r) => sum + r.stats.deleted, 0)
    expect(purged).toBe(removable)
    expect(runs.map((r) => r.status).sort()).toEqual(expect.arrayContaining(['succeeded']))
    const [{ n }] = await db.sql`select count(*)::int as n from sessions`
    expect(n).toBe(20_000 - removable)
  })

  it('sweeps only the pages from the first removable row on when the removable rows fill the end of the heap', async () => {
    const { removable, pages } = await seedGathered(20_000, 0.3, 'end')
    const result = await runScript('scripts/cleanup/sessions.ts', { env: env() })
    expect(result.code, result.output).toBe(0)
    const run = await lastRun()
    expect(run.stats).toMatchObject({ strategy: 'heap', deleted: removable })
    expect(run.stats.sweptPages).toBeLessThan(pages * 0.4)
    const [{ n }] = await db.sql`select count(*)::int as n from sessions where expires_at < ${now}::timestamptz`
    expect(n).toBe(0)
  })

  it('stops sweeping once it has deleted every removable row when they fill the start of the heap', async () => {
    const { removable, pages } = await seedGathered(20_000, 0.4, 'start')
    const result = await runScript('scripts/cleanup/sessions.ts', { env: env() })
    expect(result.code, result.output).toBe(0)
    const run = await lastRun()
    expect(run.stats).toMatchObject({ strategy: 'heap', deleted: removable })
    expect(run.stats.sweptPages).toBeLessThan(pages * 0.6)
    const [{ n }] = await db.sql`select count(*)::int as n from sessions`
    expect(n).toBe(20_000 - removable)
  })

  it('goes back for removable rows before the pages its sample pointed at', async () => {
    // A sample of a few pages finds the expired rows at the end of the heap, not the five among the first rows.
    const { removable } = await seedGathered(100_000, 0.3, 'end', 5)
    const lines: string[] = []
    const log = createLogger({ write: (_stream, line) => lines.push(line) })
    const cutoff = new Date(now)
    const result = await purgeInBatches(db.sql, {
      table: 'sessions',
      ranges: [
        { column: 'expires_at', before: cutoff },
        { column: 'revoked_at', before: new Date(cutoff.getTime() - 86_400_000) },
      ],
      dryRun: false,
      signal: new AbortController().signal,
      log,
      samplePages: 20,
    })
    expect(lines.join('\n')).toContain('some removable rows lie outside pages')
    expect(result).toMatchObject({ strategy: 'heap', deleted: removable })
    const left = await db.sql`select user_id from sessions where expires_at < ${now}::timestamptz`
    expect(left).toEqual([])
  })
})
