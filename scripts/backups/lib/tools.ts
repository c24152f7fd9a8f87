import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { ConfigError } from '@admin-jobs/sdk'
import type { Sql } from 'postgres'

/** The PostgreSQL client programs a backup uses, resolved to absolute paths, with their major versions. */
export interface PgTools {
  pgDump: string
  pgRestore: string
  dumpVersion: string
  restoreVersion: string
  serverVersion: string
}

/** The absolute path of `command` (a path, or a name looked up in `PATH`), or undefined when it is not an executable. */
export function findExecutable(command: string, searchPath: string | undefined): string | undefined {
  const candidates = command.includes('/')
    ? [path.resolve(command)]
    : (searchPath ?? '')
        .split(path.delimiter)
        .filter(Boolean)
        .map((dir) => path.join(dir, command))
  for (const file of candidates) {
    try {
      fs.accessSync(file, fs.constants.X_OK)
      if (fs.statSync(file).isFile()) return file
    } catch {}
  }
  return undefined
}

/** The version a PostgreSQL client prints (`pg_dump (PostgreSQL) 15.20 (Debian …)` → `15.20`). */
export function parseToolVersion(output: string): string | undefined {
  return /\(PostgreSQL\)\s+(\d+(?:\.\d+)?)/.exec(output)?.[1]
}

/** The major version of a PostgreSQL version string (`15.20` → 15, `9.6.24` → 9). */
export function majorOf(version: string): number {
  return Number(version.split('.')[0])
}

async function toolVersion(file: string, variable: string): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)(file, ['--version'], { timeout: 10_000 })
    const version = parseToolVersion(stdout)
    if (version) return version
    throw new Error(`unrecognised version output "${stdout.trim().slice(0, 100)}"`)
  } catch (err) {
    throw new ConfigError(`${variable} (${file}) does not run as a PostgreSQL client: ${(err as Error).message}`, {
      variable,
      cause: err,
    })
  }
}

/**
 * Finds pg_dump (PG_DUMP, default `pg_dump` on PATH) and pg_restore (PG_RESTORE, default: next to PG_DUMP when that is
 * a path, else `pg_restore` on PATH) and checks that neither is older than the server's major version. Any problem is a
 * ConfigError (exit 2) saying what to install.
 */
export async function resolvePgTools(
  sql: Sql,
  settings: { pgDump: string; pgRestore: string | undefined; searchPath: string | undefined },
): Promise<PgTools> {
  const [row] = await sql<{ version: string }[]>`select current_setting('server_version') as version`
  const serverVersion = /^\d+(?:\.\d+)?/.exec(row!.version)?.[0] ?? row!.version
  const server = majorOf(serverVersion)
  const install = `install the PostgreSQL ${server} client (e.g. apt-get install postgresql-client-${server})`
  const pgDump = findExecutable(settings.pgDump, settings.searchPath)
  if (!pgDump) {
    throw new ConfigError(
      settings.pgDump.includes('/')
        ? `PG_DUMP points to ${settings.pgDump}, which is not an executable: ${install} or fix PG_DUMP`
        : `pg_dump was not found on PATH: ${install} or set PG_DUMP to its path`,
      { variable: 'PG_DUMP' },
    )
  }
  const restoreCommand =
    settings.pgRestore ?? (settings.pgDump.includes('/') ? path.join(path.dirname(pgDump), 'pg_restore') : 'pg_restore')
  const pgRestore = findExecutable(restoreCommand, settings.searchPath)
  if (!pgRestore) {
    throw new ConfigError(`pg_restore was not found (${restoreCommand}): ${install} or set PG_RESTORE to its path`, {
      variable: 'PG_RESTORE',
    })
  }
  const [dumpVersion, restoreVersion] = await Promise.all([
    toolVersion(pgDump, 'PG_DUMP'),
    toolVersion(pgRestore, 'PG_RESTORE'),
  ])
  for (const [name, version, variable] of [
    ['pg_dump', dumpVersion, 'PG_DUMP'],
    ['pg_restore', restoreVersion, 'PG_RESTORE'],
  ] as const) {
    if (majorOf(version) < server) {
      throw new ConfigError(
        `${name} ${version} (${name === 'pg_dump' ? pgDump : pgRestore}) is older than the server (PostgreSQL ${serverVersion}) and cannot dump it: ${install} or set ${variable}`,
        { variable },
      )
    }
  }
  return { pgDump, pgRestore, dumpVersion, restoreVersion, serverVersion }
}
