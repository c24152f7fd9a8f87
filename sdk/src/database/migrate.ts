import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Sql } from 'postgres'
import { sha256 } from '../files/checksum.ts'
import type { Logger } from '../runtime/log.ts'

/** The folder of ordered plain-SQL migrations shipped with the SDK. */
export const migrationsDir = fileURLToPath(new URL('../../migrations/', import.meta.url))

const lockKey = 'admin-jobs:migrate'

/** One migration file on disk. */
export interface Migration {
  name: string
  sql: string
  checksum: string
}

/** Reads `NNNN_name.sql` files in name order from `dir` (default: the SDK's migrations). */
export async function loadMigrations(dir = migrationsDir): Promise<Migration[]> {
  const names = (await fs.readdir(dir)).filter((n) => /^\d{4}_[\w-]+\.sql$/.test(n)).sort()
  return Promise.all(
    names.map(async (name) => {
      const sql = await fs.readFile(path.join(dir, name), 'utf8')
      return { name, sql, checksum: checksumOf(sql) }
    }),
  )
}

/**
 * A migration's checksum over its statements only (`sql:` + sha256 with `--` comments and blank space folded), so
 * rewording a comment is not a change; changing a statement is.
 */
export function checksumOf(sql: string): string {
  const statements = sql.replace(/--.*$/gm, '').replace(/\s+/g, ' ').trim()
  return `sql:${sha256(statements)}`
}

/**
 * Applies pending migrations, each in its own transaction, under an advisory lock so concurrent callers wait and then
 * find nothing left to do. Returns the names applied now.
 */
export async function migrate(sql: Sql, options: { log?: Logger; dir?: string } = {}): Promise<string[]> {
  const migrations = await loadMigrations(options.dir)
  const reserved = await sql.reserve()
  try {
    await reserved`select pg_advisory_lock(hashtext(${lockKey}))`
    try {
      await reserved.unsafe(`
        create schema if not exists jobs;
        create table if not exists jobs.migrations (
          name text primary key, checksum text not null, applied_at timestamptz not null default now()
        );`)
      const done = new Map(
        (await reserved<{ name: string; checksum: string }[]>`select name, checksum from jobs.migrations`).map((r) => [
          r.name,
          r.checksum,
        ]),
      )
      const applied: string[] = []
      for (const m of migrations) {
        const previous = done.get(m.name)
        if (previous !== undefined) {
          // A checksum of the whole file (comments included) predates this scheme: record the statements' one.
          if (!previous.startsWith('sql:'))
            await reserved`update jobs.migrations set checksum = ${m.checksum} where name = ${m.name}`
          else if (previous !== m.checksum)
            options.log?.warn('migration changed after it was applied', { migration: m.name })
          continue
        }
        await reserved.unsafe('begin')
        try {
          await reserved.unsafe(m.sql)
          await reserved`insert into jobs.migrations (name, checksum) values (${m.name}, ${m.checksum})`
          await reserved.unsafe('commit')
        } catch (err) {
          await reserved.unsafe('rollback')
          throw new Error(`migration ${m.name} failed`, { cause: err })
        }
        applied.push(m.name)
        options.log?.info('migration applied', { migration: m.name })
      }
      return applied
    } finally {
      await reserved`select pg_advisory_unlock(hashtext(${lockKey}))`
    }
  } finally {
    reserved.release()
  }
}

/** Migrations of this version that `sql` has not applied; `created` is false when it has no `jobs.migrations` at all. */
export async function pendingMigrations(sql: Sql): Promise<{ created: boolean; pending: string[] }> {
  // Names are enough to know what is pending; reading and hashing every file is migrate's business.
  const migrations = (await fs.readdir(migrationsDir))
    .filter((n) => /^\d{4}_[\w-]+\.sql$/.test(n))
    .sort()
    .map((name) => ({ name }))
  const [row] = await sql<{ present: boolean }[]>`select to_regclass('jobs.migrations') is not null as present`
  if (!row?.present) return { created: false, pending: migrations.map((m) => m.name) }
  const done = new Set((await sql<{ name: string }[]>`select name from jobs.migrations`).map((r) => r.name))
  return { created: true, pending: migrations.filter((m) => !done.has(m.name)).map((m) => m.name) }
}
