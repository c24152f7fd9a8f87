import { sha256File } from '@admin-jobs/sdk'
import postgres, { type Sql } from 'postgres'
import { clientLines, processMessage, startClient } from './client.ts'
import { readChecksum } from './dump.ts'
import { clientEnv, libpqTarget } from './target.ts'

/** Row counts per table, keyed `schema.table`. */
export type TableCounts = Record<string, number>

/** One table whose restored row count differs from the dump's snapshot (actual null: the table is missing). */
export interface CountMismatch {
  table: string
  expected: number
  actual: number | null
}

/** The outcome of verifying one dump; `error` says what failed first. */
export interface Verification {
  status: 'passed' | 'failed'
  checksumOk: boolean
  tocEntries: number | undefined
  restored: boolean
  tables: number | undefined
  rows: number | undefined
  mismatches: CountMismatch[]
  verifyMs: number
  error: string | undefined
}

/**
 * pg_restore's `--dbname` for a database the PG* variables already name: a conninfo holding only the (quoted) name, so
 * that a name with `=` in it is not read as a connection string. Host, user and password come from the environment.
 */
export function conninfoDatabase(name: string): string {
  return `dbname='${name.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`

/** Exact row counts of every ordinary table outside the system schemas and extensions, read in `sql`'s transaction. */
export async function countTables(sql: Sql): Promise<TableCounts> {
  const tables = await sql<{ schema: string; table: string }[]>`
    select n.nspname as schema, c.relname as table
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind = 'r' and n.nspname not like 'pg\_%' and n.nspname <> 'information_schema'
      and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
    order by 1, 2`
  const counts: TableCounts = {}
  for (const { schema, table } of tables) {
    // Identifiers cannot be parameters; they come from the catalog and are quoted.
    const [row] = await sql.unsafe<{ n: string }[]>(
      `select count(*)::bigint as n from ${quoteIdent(schema)}.${quoteIdent(table)}`,
    )
    counts[`${schema}.${table}`] = Number(row!.n)
  }
  return counts
}

/** Tables whose counts differ between the dump's snapshot and the restored copy. */
export function compareCounts(expected: TableCounts, actual: TableCounts): CountMismatch[] {
  return Object.entries(expected)
    .filter(([table, n]) => actual[table] !== n)
    .map(([table, n]) => ({ table, expected: n, actual: actual[table] ?? null }))
}

/** Drops every user schema of the scratch database (and recreates an empty `public`) so a restore starts clean. */
async function clearDatabase(sql: Sql): Promise<void> {
  const schemas = await sql<{ name: string }[]>`
    select nspname as name from pg_namespace where nspname not like 'pg\_%' and nspname <> 'information_schema'`
  for (const { name } of schemas) await sql.unsafe(`drop schema ${quoteIdent(name)} cascade`)
  await sql`create schema public`
}

/**
 * Verifies a dump: its checksum against `<file>.sha256`, `pg_restore --list` (readable table of contents), and, with
 * `restoreUrl`, a full restore into that scratch database (everything in it is dropped first) with row counts compared
 * table by table against `expectedCounts` (the dump snapshot's). Stops at the first failing step; never throws for a
 * bad dump, only reports it. pg_restore sees only `env` (PATH, HOME, locale) and, for the restore, the scratch
 * database's PG* variables.
 */
export async function verifyBackup(options: {
  pgRestore: string
  file: string
  env: Readonly<Record<string, string>>
  restoreUrl?: string
  expectedCounts?: TableCounts
  jobs?: number
  signal?: AbortSignal
}): Promise<Verification> {
  const started = performance.now()
  const result: Verification = {
    status: 'failed',
    checksumOk: false,
    tocEntries: undefined,
    restored: false,
    tables: undefined,
    rows: undefined,
    mismatches: [],
    verifyMs: 0,
    error: undefined,
  }
  const done = (error?: string) => {
    result.error = error
    result.status = error ? 'failed' : 'passed'
    result.verifyMs = Math.round(performance.now() - started)
    return result
  }
  const recorded = await readChecksum(options.file)
  if (!recorded) return done('checksum file missing or malformed')
  const actual = await sha256File(options.file).catch(() => undefined)
  if (actual !== recorded)
    return done(actual ? 'checksum mismatch: the dump changed since it was written' : 'dump file unreadable')
  result.checksumOk = true

  try {
    const list = await clientLines(options.pgRestore, ['--list', options.file], {
      env: clientEnv(options.env),
      signal: options.signal,
    })
    result.tocEntries = list.filter((l) => /^\d+;/.test(l)).length
    if (result.tocEntries === 0) return done('pg_restore --list found no entries')
  } catch (err) {
    return done(`pg_restore --list failed: ${processMessage(err)}`)
  }
  if (!options.restoreUrl) return done()

  const target = libpqTarget(options.restoreUrl, 'BACKUP_VERIFY_DATABASE_URL')
  const scratch = postgres(options.restoreUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 })
  try {
    await clearDatabase(scratch)
    try {
      const args = ['--no-owner', '--no-privileges', '--exit-on-error', '--no-password', `--jobs=${options.jobs ?? 2}`]
      const dbname = `--dbname=${conninfoDatabase(target.database)}`
      const restore = startClient(options.pgRestore, [...args, dbname, options.file], {
        env: clientEnv(options.env, target),
        signal: options.signal,
      })
      restore.stdout.resume()
      await restore.done
    } catch (err) {
      return done(`restore failed: ${processMessage(err)}`)
    }
    result.restored = true
    const counts = await countTables(scratch)
    result.tables = Object.keys(counts).length
    result.rows = Object.values(counts).reduce((a, b) => a + b, 0)
    if (options.expectedCounts) {
      result.mismatches = compareCounts(options.expectedCounts, counts)
      if (result.mismatches.length) {
        const m = result.mismatches[0]!
        return done(
          `row counts differ in ${result.mismatches.length} table(s), e.g. ${m.table}: ${m.expected} dumped, ${m.actual ?? 'missing'} restored`,
        )
      }
    }
    return done()
  } finally {
    await scratch.end({ timeout: 5 })
  }
}
