import type { Sql } from 'postgres'
import { type Env, parseConfig } from '../../config/config.ts'
import { openDatabase } from '../../database/client.ts'
import { pendingMigrations } from '../../database/migrate.ts'
import { ConfigError } from '../../runtime/errors.ts'
import { createLogger } from '../../runtime/log.ts'

/** Where a command reads its environment and writes its output (tests pass their own). */
export interface CommandIO {
  env: Env
  stdout(text: string): void
  stderr(text: string): void
}

/** One `pnpm jobs` command. */
export interface Command {
  name: string
  usage: string
  description: string
  run(args: string[], io: CommandIO): Promise<number>
}

/** Parses `--name value` / `--flag` arguments against a spec; positional arguments are returned apart. */
export function parseArgs(
  args: readonly string[],
  spec: Readonly<Record<string, 'boolean' | 'string'>>,
): { flags: Record<string, string | boolean | undefined>; positional: string[] } {
  const flags: Record<string, string | boolean | undefined> = {}
  const positional: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (!arg.startsWith('--')) {
      positional.push(arg)
      continue
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined]
    const kind = spec[name]
    if (!kind) throw new ConfigError(`unknown flag --${name}`)
    if (kind === 'boolean') flags[name] = true
    else {
      const value = inline ?? args[++i]
      if (value === undefined) throw new ConfigError(`--${name} needs a value`)
      flags[name] = value
    }
  }
  return { flags, positional }
}

/** Parses a positive whole-number flag value, or the fallback. */
export function positiveInt(value: string | boolean | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) < 1) {
    throw new ConfigError(`--${name} must be a positive whole number`)
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
  const db = await openDatabase(config, {
    log,
    applicationName: 'admin-jobs-cli',
    migrate: readOnly ? false : options.migrate,
  })
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
