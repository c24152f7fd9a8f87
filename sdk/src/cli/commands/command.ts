import type { Sql } from 'postgres'
import { type Config, type Env, parseConfig } from '../../config/config.ts'
import { redactUrl } from '../../config/redact.ts'
import { type Database, databaseAddress, openDatabase } from '../../database/client.ts'
import { pendingMigrations } from '../../database/migrate.ts'
import type { CommandLine, FlagSpecs } from '../../runtime/args.ts'
import { ConfigError } from '../../runtime/errors.ts'
import { type ExitCodeDoc, renderHelp, type SettingDoc } from '../../runtime/help.ts'
import { createLogger, type Logger } from '../../runtime/log.ts'
import { terminalWidth } from '../../text/table.ts'

/** Where a command reads its environment and writes its output (tests pass their own). */
export interface CommandIO {
  env: Env
  stdout(text: string): void
  stderr(text: string): void
  /** The terminal's width when stdout is one (tables fit it, or COLUMNS). */
  columns?: number
  /** Ends a long-running command (`status --serve`) as SIGINT/SIGTERM do; tests abort it instead of signalling. */
  signal?: AbortSignal
}

/** The width tables are fitted to: COLUMNS, else the terminal's; undefined when output goes to a pipe or file. */
export function outputWidth(io: CommandIO): number | undefined {
  return terminalWidth(io.env, io.columns)
}

/** Resolves with the name of the first SIGINT or SIGTERM (or `stopped` when io.signal aborts). */
export function waitForStop(io: CommandIO): Promise<string> {
  return new Promise((resolve) => {
    const done = (name: string) => {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
      io.signal?.removeEventListener('abort', onAbort)
      resolve(name)
    }
    const onInt = () => done('SIGINT')
    const onTerm = () => done('SIGTERM')
    const onAbort = () => done('stopped')
    process.once('SIGINT', onInt)
    process.once('SIGTERM', onTerm)
    if (io.signal?.aborted) done('stopped')
    else io.signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** The database could not be opened: one line naming where it was sought (main prints it without a stack). */
export class DatabaseUnreachableError extends Error {}

/** Which database a command uses, in words: `127.0.0.1:5432 (DATABASE_URL=postgres://u:***@…/db)` or the embedded one. */
export function describeDatabase(config: Config): string {
  if (!config.databaseUrl) return `the embedded PostgreSQL (DATABASE_URL is unset; data in ${config.dataDir})`
  const { host, port } = databaseAddress(config.databaseUrl)
  return `${host}:${port} (DATABASE_URL=${redactUrl(config.databaseUrl)})`
}

/**
 * Opens the configured database as a command does (the embedded server started or adopted when DATABASE_URL is
 * unset); a failure to reach it becomes one DatabaseUnreachableError naming host and port (the original as cause).
 */
export async function openCommandDatabase(
  config: Config,
  log: Logger,
  options: { migrate?: boolean } = {},
): Promise<Database> {
  try {
    return await openDatabase(config, { log, applicationName: 'admin-jobs-cli', migrate: options.migrate })
  } catch (err) {
    if (err instanceof ConfigError) throw err
    const reason = err instanceof Error ? err.message : String(err)
    throw new DatabaseUnreachableError(`cannot open the database at ${describeDatabase(config)}: ${reason}`, {
      cause: err,
    })
  }
}

/** One `pnpm jobs` command: what `--help` shows of it, and how it runs. */
export interface Command {
  name: string
  usage: string
  description: string
  /** Its flags: the CLI parses the arguments against them before `run`, and `--help` lists them. */
  flags: FlagSpecs
  /** Takes positional arguments (job ids, targets); default false. */
  positionals?: boolean
  /** Hands its arguments on unparsed (`run` passes them to the job script, which parses them itself). */
  passThrough?: boolean
  /** Environment variables it reads, for `--help`. */
  settings?: readonly SettingDoc[]
  /** Exit codes beyond the common ones (0 done, 1 failed, 2 usage or configuration error). */
  exitCodes?: readonly ExitCodeDoc[]
  /** Lines `--help` adds after the settings. */
  notes?: readonly string[]
  run(args: CommandLine, io: CommandIO): Promise<number>
}

/** The settings of a command that opens the database. */
export const databaseSettings: readonly SettingDoc[] = [
  {
    name: 'DATABASE_URL',
    kind: 'URL (postgres://, postgresql://)',
    description: 'the admin database; unset: the embedded PostgreSQL (refused when CI or GITHUB_ACTIONS is true)',
  },
  {
    name: 'ADMIN_JOBS_DATA_DIR',
    kind: 'directory',
    default: '.data',
    description: 'where the embedded PostgreSQL keeps its data',
  },
]

/** The exit codes every command shares. */
export const commandExitCodes: readonly ExitCodeDoc[] = [
  { code: '0', meaning: 'done' },
  { code: '1', meaning: 'failed' },
  { code: '2', meaning: 'usage or configuration error (unknown flag or job, malformed value or setting)' },
]

/** The `--help` page of a command. */
export function renderCommandHelp(command: Command): string {
  const codes = new Map(commandExitCodes.map((c) => [c.code, c]))
  for (const c of command.exitCodes ?? []) codes.set(c.code, c)
  return renderHelp({
    title: `pnpm jobs ${command.name}`,
    description: command.description,
    usage: [`pnpm jobs ${command.usage}`],
    flags: command.flags,
    settings: [{ heading: 'settings (environment variables)', items: command.settings ?? [] }],
    notes: [
      ...(command.notes ?? []),
      'Every command takes --verbose: an error is then printed with its stack and causes.',
    ],
    exitCodes: [...codes.values()],
  })
}

/** Parses a positive whole-number flag value, or the fallback. */
export function positiveInt(value: string | boolean | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) < 1) {
    throw new ConfigError(`--${name} must be a positive whole number (got "${value}")`)
  }
  return Number(value)
}

/** How a command uses the database. */
export interface DatabaseUse<T> {
  /** false: leave migrations alone (`pnpm jobs migrate` applies them itself). */
  migrate?: boolean
  /**
   * The command only reads, so it never changes the schema of DATABASE_URL: behind this version's migrations it says so
   * and reads what is there; with no admin-jobs tables at all it answers `empty()`, since nothing has run there. The
   * embedded database is migrated as always: it is local and the CLI's own.
   */
  readOnly?: { empty: () => T }
}

/** Opens the configured database (embedded when DATABASE_URL is unset) for the duration of `fn`. */
export async function withDatabase<T>(
  io: CommandIO,
  fn: (sql: Sql) => Promise<T>,
  options: DatabaseUse<T> = {},
): Promise<T> {
  const config = parseConfig(io.env)
  const log = createLogger({ scope: 'jobs', secrets: config.secrets, write: (_s, line) => io.stderr(line) })
  const readOnly = config.databaseUrl ? options.readOnly : undefined
  const db = await openCommandDatabase(config, log, { migrate: readOnly ? false : options.migrate })
  try {
    if (!readOnly) return await fn(db.sql)
    const { created, pending } = await pendingMigrations(db.sql)
    if (!created) {
      log.warn(
        'DATABASE_URL has no admin-jobs tables yet, so no job has run against it; this command changes nothing (`pnpm jobs migrate` or the first job run creates them)',
      )
      return readOnly.empty()
    }
    if (pending.length === 0) return await fn(db.sql)
    const behind = `DATABASE_URL is ${pending.length} migration(s) behind this version (${pending.join(', ')})`
    log.warn(
      `${behind}: showing what it holds; this command changes nothing (\`pnpm jobs migrate\` brings it up to date)`,
    )
    try {
      return await fn(db.sql)
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === '42P01' || code === '42703') {
        throw new ConfigError(`${behind}, and this command needs them: run \`pnpm jobs migrate\` first`, {
          variable: 'DATABASE_URL',
          cause: err,
        })
      }
      throw err
    }
  } finally {
    await db.close()
  }
}
