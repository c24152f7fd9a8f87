import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { ConfigError } from '@admin-jobs/sdk'
import type { Sql } from 'postgres'

/** A PostgreSQL client program, resolved to an absolute path, with the version it prints. */
export interface PgTool {
  path: string
  version: string
}

/** The client programs a backup uses, checked when the settings are read. */
export interface PgTools {
  pgDump: PgTool
  pgRestore: PgTool
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

/** Runs `<file> --version` (10 s at most, with only `env`) and reads the version; a ConfigError naming `variable` otherwise. */
function toolVersion(file: string, variable: string, env: Readonly<Record<string, string>>): string {
  let output: string
  try {
    output = execFileSync(file, ['--version'], {
      encoding: 'utf8',
      timeout: 10_000,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
  } catch (err) {
    throw new ConfigError(`${variable} (${file}) does not run as a PostgreSQL client: ${(err as Error).message}`, {
      variable,
      cause: err,
    })
  }
  const version = parseToolVersion(output)
  if (!version) {
    throw new ConfigError(
      `${variable} (${file}) does not run as a PostgreSQL client: it printed "${output.trim().slice(0, 100)}"`,
      { variable },
    )
  }
  return version
}

/**
 * Finds pg_dump (PG_DUMP, default `pg_dump` on PATH) and pg_restore (PG_RESTORE, default: next to PG_DUMP when that is
 * a path, else `pg_restore` on PATH) and runs each with `--version`. Needs no database, so the job's settings call it:
 * a missing or broken client is a ConfigError (exit 2) before any connection or history row.
 */
export function findPgTools(
  settings: { pgDump: string; pgRestore: string | undefined },
  env: Readonly<Record<string, string>>,
): PgTools {
  const install = 'install the PostgreSQL client (e.g. apt-get install postgresql-client)'
  const dump = findExecutable(settings.pgDump, env.PATH)
  if (!dump) {
    throw new ConfigError(
      settings.pgDump.includes('/')
        ? `PG_DUMP points to ${settings.pgDump}, which is not an executable: ${install} or fix PG_DUMP`
        : `pg_dump was not found on PATH: ${install} or set PG_DUMP to its path`,
      { variable: 'PG_DUMP' },
    )
  }
  const restoreCommand =
    settings.pgRestore ?? (settings.pgDump.includes('/') ? path.join(path.dirname(dump), 'pg_restore') : 'pg_restore')
  const restore = findExecutable(restoreCommand, env.PATH)
  if (!restore) {
    throw new ConfigError(
      settings.pgRestore
        ? `PG_RESTORE points to ${settings.pgRestore}, which is not an executable: ${install} or fix PG_RESTORE`
        : `pg_restore was not found (${restoreCommand}): ${install} or set PG_RESTORE to its path`,
      { variable: 'PG_RESTORE' },
    )
  }
  return {
    pgDump: { path: dump, version: toolVersion(dump, 'PG_DUMP', env) },
    pgRestore: { path: restore, version: toolVersion(restore, 'PG_RESTORE', env) },
  }
}

/**
 * The server's version, checked against the clients: neither may be older than the server's major version (an older
 * pg_dump refuses to dump a newer server). Only this part needs the database; a mismatch is a ConfigError (exit 2)
 * saying which client to install.
 */
export async function checkToolsAgainstServer(sql: Sql, tools: PgTools): Promise<string> {
  const [row] = await sql<{ version: string }[]>`select current_setting('server_version') as version`
  const serverVersion = /^\d+(?:\.\d+)?/.exec(row!.version)?.[0] ?? row!.version
  const server = majorOf(serverVersion)
  const install = `install the PostgreSQL ${server} client (e.g. apt-get install postgresql-client-${server})`
  for (const [name, tool, variable] of [
    ['pg_dump', tools.pgDump, 'PG_DUMP'],
    ['pg_restore', tools.pgRestore, 'PG_RESTORE'],
  ] as const) {
    if (majorOf(tool.version) < server) {
      throw new ConfigError(
        `${name} ${tool.version} (${tool.path}) is older than the server (PostgreSQL ${serverVersion}) and cannot dump it: ${install} or set ${variable}`,
        { variable },
      )
    }
  }
  return serverVersion
}
