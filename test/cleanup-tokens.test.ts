import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript } from './support/run.ts'

let db: TestDatabase
const now = '2026-06-15T12:00:00.000Z'

beforeAll(async () => {
  db = await createTestDatabase('tokens')
})

async function seed() {
  await db.sql`truncate tokens`
  await db.sql`
    insert into tokens (kind, token_hash, expires_at, revoked_at, used_at) values
      ('refresh', 'expired', ${now}::timestamptz - interval '1 microsecond', null, null),
      ('refresh', 'expires-now', ${now}::timestamptz, null, null),
      ('password_reset', 'revoked-25h', ${now}::timestamptz + interval '1 hour', ${now}::timestamptz - interval '25 hours', null),
      ('password_reset', 'revoked-23h', ${now}::timestamptz + interval '1 hour', ${now}::timestamptz - interval '23 hours', null),
      ('email_verification', 'used-live', ${now}::timestamptz + interval '1 day', null, ${now}::timestamptz - interval '2 days'),
      ('invite', 'invite-expired-long-ago', ${now}::timestamptz - interval '400 days', null, null),
      ('invite', 'invite-live', ${now}::timestamptz + interval '7 days', null, null)`
}

describe('cleanup/tokens', () => {
  it('deletes expired and long-revoked tokens of every kind and keeps the rest', async () => {
    await seed()
    const result = await runScript('scripts/cleanup/tokens.ts', { env: { DATABASE_URL: db.url, ADMIN_JOBS_NOW: now } })
    expect(result.code, result.output).toBe(0)
    const left = (await db.sql`select token_hash from tokens order by token_hash`).map((r) => r.token_hash)
    expect(left).toEqual(['expires-now', 'invite-live', 'revoked-23h', 'used-live'])
    const [run] = await db.sql`select * from jobs.runs where job = 'cleanup/tokens' order by id desc limit 1`
    expect(run.stats.deleted).toBe(3)
  })

  it('reports exact counts in a dry run and deletes nothing', async () => {
    await seed()
    const result = await runScript('scripts/cleanup/tokens.ts', {
      env: { DATABASE_URL: db.url, ADMIN_JOBS_NOW: now, DRY_RUN: 'true' },
    })
    expect(result.code, result.output).toBe(0)
    const [{ n }] = await db.sql`select count(*)::int as n from tokens`
    expect(n).toBe(7)
    const [run] = await db.sql`select * from jobs.runs where job = 'cleanup/tokens' order by id desc limit 1`
    expect(run.stats).toMatchObject({ deleted: 0, wouldDelete: 3 })
    expect(run.stats.reasons.expires_at).toEqual({
      rows: 2,
      oldest: '2025-05-11T12:00:00.000Z',
      newest: '2026-06-15T11:59:59.999Z',
    })
  })

  it('empties a table whose every token has expired, and refuses it when TOKENS_MAX_FRACTION caps the share', async () => {
    const seedExpired = async () => {
      await db.sql`truncate tokens`
      await db.sql`
        insert into tokens (kind, token_hash, expires_at)
        select 'refresh', md5(g::text), ${now}::timestamptz - interval '1 day' from generate_series(1, 100) g`
    }
    await seedExpired()
    const capped = await runScript('scripts/cleanup/tokens.ts', {
      env: { DATABASE_URL: db.url, ADMIN_JOBS_NOW: now, TOKENS_MAX_FRACTION: '95%' },
    })
    expect(capped.code, capped.output).toBe(1)
    expect(capped.output).toContain('refusing to delete 100 of 100 rows of tokens')
    const [{ n: kept }] = await db.sql`select count(*)::int as n from tokens`
    expect(kept).toBe(100)

    const result = await runScript('scripts/cleanup/tokens.ts', { env: { DATABASE_URL: db.url, ADMIN_JOBS_NOW: now } })
    expect(result.code, result.output).toBe(0)
    const [{ n }] = await db.sql`select count(*)::int as n from tokens`
    expect(n).toBe(0)
  })
})
