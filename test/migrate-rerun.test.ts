import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { checksumOf, createLogger, loadMigrations, migrate } from '@admin-jobs/sdk/platform'
import postgres from 'postgres'
import { afterAll, describe, expect, it } from 'vitest'
import { createTestDatabase } from './support/db.ts'
import { runJobScript as runScript } from './support/run.ts'

const pools: postgres.Sql[] = []
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end({ timeout: 5 })))
})

function pool(url: string) {
  const sql = postgres(url, { max: 2, onnotice: () => {} })
  pools.push(sql)
  return sql
}

describe('migrations', () => {
  it('apply every file once, then find nothing to do on a second run', async () => {
    const db = await createTestDatabase('migrate_rerun', { migrate: false })
    const all = (await loadMigrations()).map((m) => m.name)
    expect(all[0]).toBe('0001_core.sql')
    expect(await migrate(db.sql)).toEqual(all)
    expect(await migrate(db.sql)).toEqual([])
    const recorded = await db.sql`select name, checksum from jobs.migrations order by name`
    expect(recorded.map((r) => r.name)).toEqual(all)
    expect(recorded.every((r) => /^sql:[0-9a-f]{64}$/.test(r.checksum))).toBe(true)
    for (const table of ['users', 'sessions', 'tokens', 'audit_logs', 'credentials', 'licenses', 'subscriptions']) {
      const [row] = await db.sql`select to_regclass(${`public.${table}`}) is not null as present`
      expect(row!.present, table).toBe(true)
    }
    const [runs] = await db.sql`select to_regclass('jobs.runs') is not null as present`
    expect(runs!.present).toBe(true)
  })

  it('tell a reworded comment from a changed statement, and take over checksums recorded the old way', async () => {
    const db = await createTestDatabase('migrate_checksums', { migrate: false })
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'aj-migrations-'))
    try {
      const file = path.join(dir, '0001_demo.sql')
      await fs.writeFile(file, '-- the first wording\ncreate table if not exists demo (id int);\n')
      const warnings: string[] = []
      const log = createLogger({ write: (_s, line) => void warnings.push(line) })
      await migrate(db.sql, { dir, log })
      await fs.writeFile(file, '-- reworded, and moved\n\ncreate table if not exists demo (id int);\n')
      await db.sql`update jobs.migrations set checksum = ${'0'.repeat(64)} where name = '0001_demo.sql'`
      await migrate(db.sql, { dir, log })
      const [row] = await db.sql`select checksum from jobs.migrations where name = '0001_demo.sql'`
      expect(row!.checksum).toBe(checksumOf('create table if not exists demo (id int);'))
      await migrate(db.sql, { dir, log })
      expect(warnings.filter((w) => w.includes('changed after it was applied'))).toEqual([])
      await fs.writeFile(file, 'create table if not exists demo (id bigint);\n')
      await migrate(db.sql, { dir, log })
      expect(warnings.filter((w) => w.includes('changed after it was applied'))).toHaveLength(1)
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
  })

  it('are each safe to execute again on a migrated database (idempotent SQL)', async () => {
    const db = await createTestDatabase('migrate_idempotent')
    for (const m of await loadMigrations()) {
      await expect(
        db.sql.unsafe(m.sql).then(() => m.name),
        m.name,
      ).resolves.toBe(m.name)
    }
  })

  it('run concurrently from two connections: both succeed and each file is applied once', async () => {
    const db = await createTestDatabase('migrate_concurrent', { migrate: false })
    const all = (await loadMigrations()).map((m) => m.name)
    const [a, b] = await Promise.all([migrate(pool(db.url)), migrate(pool(db.url))])
    expect([...a!, ...b!].sort()).toEqual(all)
    const [{ n }] = await db.sql`select count(*)::int as n from jobs.migrations`
    expect(n).toBe(all.length)
  })

  it('leave a database they create tables in usable by two jobs starting at once', async () => {
    const db = await createTestDatabase('migrate_jobs', { migrate: false })
    const ok = 'test/fixtures/scripts/test/ok.ts'
    const results = await Promise.all([
      runScript(ok, { env: { DATABASE_URL: db.url } }),
      runScript(ok, { env: { DATABASE_URL: db.url } }),
    ])
    for (const r of results) expect(r.code, r.output).toBe(0)
    const [{ n }] = await db.sql`select count(*)::int as n from jobs.migrations`
    expect(n).toBe((await loadMigrations()).length)
  })

  it('roll back a failing file, record only what succeeded, and warn when an applied file changed', async () => {
    const db = await createTestDatabase('migrate_failing', { migrate: false })
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'aj-migrations-'))
    await fs.writeFile(path.join(dir, '0001_first.sql'), 'create table public.first_table (id int);')
    await fs.writeFile(
      path.join(dir, '0002_broken.sql'),
      'create table public.half_done (id int);\nselect * from public.no_such_table;',
    )
    const error = await migrate(db.sql, { dir }).catch((err: Error) => err)
    expect(error).toBeInstanceOf(Error)
    expect((error as Error).message).toBe('migration 0002_broken.sql failed')
    expect(((error as Error).cause as { code?: string }).code).toBe('42P01')
    const [state] = await db.sql`select
        to_regclass('public.first_table') is not null as first,
        to_regclass('public.half_done') is not null as half,
        (select array_agg(name order by name) from jobs.migrations) as names`
    expect(state).toEqual({ first: true, half: false, names: ['0001_first.sql'] })

    await fs.writeFile(path.join(dir, '0001_first.sql'), 'create table public.first_table (id int, changed int);')
    await fs.rm(path.join(dir, '0002_broken.sql'))
    const lines: string[] = []
    const log = createLogger({ write: (_s, line) => lines.push(line) })
    expect(await migrate(db.sql, { dir, log })).toEqual([])
    expect(lines.join('\n')).toMatch(/WARN .*migration changed after it was applied migration=0001_first\.sql/)
    await fs.rm(dir, { recursive: true, force: true })
  })
})
