import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript } from './support/run.ts'

let db: TestDatabase

beforeAll(async () => {
  db = await createTestDatabase('sessions')
})

async function seed() {
  await db.sql`truncate sessions`
  await db.sql`
    insert into sessions (user_id, expires_at, revoked_at) values
      (1, now() - interval '1 minute', null),
      (1, now() + interval '1 hour', now() - interval '25 hours'),
      (1, now() + interval '1 hour', now() - interval '23 hours'),
      (1, now() + interval '1 hour', null),
      (2, now() - interval '10 days', now() - interval '30 days')`
}

describe('cleanup/sessions', () => {
  it('deletes expired and long-revoked sessions and keeps the rest', async () => {
    await seed()
    const result = await runScript('scripts/cleanup/sessions.ts', { env: { DATABASE_URL: db.url } })
    expect(result.code, result.output).toBe(0)
    const [{ n }] = await db.sql`select count(*)::int as n from sessions`
    expect(n).toBe(2)
    const [run] = await db.sql`select * from jobs.runs where job = 'cleanup/sessions' order by id desc limit 1`
    expect(run.status).toBe('succeeded')
    expect(run.stats.deleted).toBe(3)
  })

  it('changes nothing in a dry run and reports what it would delete', async () => {
    await seed()
    const result = await runScript('scripts/cleanup/sessions.ts', {
      args: ['--dry-run'],
      env: { DATABASE_URL: db.url },
    })
    expect(result.code, result.output).toBe(0)
    const [{ n }] = await db.sql`select count(*)::int as n from sessions`
    expect(n).toBe(5)
    const [run] = await db.sql`select * from jobs.runs where job = 'cleanup/sessions' order by id desc limit 1`
    expect(run.dry_run).toBe(true)
    expect(run.stats.deleted).toBe(3)
  })
})
