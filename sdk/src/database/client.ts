import postgres, { type Sql } from 'postgres'
import type { Config } from '../config/config.ts'
import type { Logger } from '../runtime/log.ts'
import { pendingMigrations } from './migrate.ts'

/** Which database a postgres:// URL names: host, port (default 5432) and database (default: the user's name). */
export function databaseAddress(url: string): { host: string; port: string; database: string } {
  const u = new URL(url)
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username)
  return { host: u.hostname, port: u.port || '5432', database }
}

/** An open connection pool plus what is needed to close it (and release the embedded server). */
export interface Database {
  readonly sql: Sql
  readonly url: string
  readonly embedded: boolean
  close(): Promise<void>
}

/** Options of openDatabase; defaults: pool of 5, migrations applied when behind, 30 s for the server's first answer. */
export interface OpenOptions {
  log: Logger
  applicationName?: string
  max?: number
  migrate?: boolean
  /** Aborting it (SIGINT/SIGTERM) gives up waiting for the database at once. */
  signal?: AbortSignal
  /** How long DATABASE_URL's server may take to answer a first query. */
  answerTimeoutMs?: number
}

/**
 * Waits for `work`, but gives up when `signal` aborts or `ms` pass: a DATABASE_URL that points at something other than
 * PostgreSQL (a proxy answering HTTP, a black-holed address) makes postgres.js reconnect forever instead of failing.
 */
async function within<T>(work: Promise<T>, what: string, ms: number | undefined, signal?: AbortSignal): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  const stop = new Promise<never>((_, reject) => {
    if (ms !== undefined) {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `no answer from the database within ${Math.round(ms / 1000)}s while ${what}: ` +
                'check that DATABASE_URL points at a reachable PostgreSQL server',
            ),
          ),
        ms,
      )
    }
    if (signal) {
      onAbort = () => reject(signal.reason ?? new Error('aborted'))
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    }
  })
  try {
    return await Promise.race([work, stop])
  } finally {
    clearTimeout(timer)
    if (onAbort) signal?.removeEventListener('abort', onAbort)
  }
}

/** Creates a postgres.js pool with the project's defaults (quiet notices, bigint as string, short connect timeout). */
export function connect(
  url: string,
  options: { applicationName?: string; max?: number; connectTimeoutMs?: number } = {},
): Sql {
  return postgres(url, {
    max: options.max ?? 5,
    connect_timeout: Math.max(1, Math.ceil((options.connectTimeoutMs ?? 10_000) / 1000)),
    idle_timeout: 30,
    onnotice: () => {},
    connection: { application_name: options.applicationName ?? 'admin-jobs' },
  })
}

/** True when the database has every SDK migration applied (two cheap queries). */
export async function isMigrated(sql: Sql): Promise<boolean> {
  return (await pendingMigrations(sql)).pending.length === 0
}

/**
 * Opens DATABASE_URL, or the shared embedded PostgreSQL when it is unset (parseConfig already refused that on CI).
 * Pending migrations are applied unless `migrate: false`.
 */
export async function openDatabase(config: Config, options: OpenOptions): Promise<Database> {
  // The embedded server's code loads only for local runs without DATABASE_URL.
  const embedded = config.databaseUrl
    ? undefined
    : await (await import('./embedded.ts')).ensureEmbedded({ dataDir: config.dataDir, log: options.log })
  const url = config.databaseUrl ?? embedded!.url
  const sql = connect(url, options)
  try {
    // The first answer has a deadline; migrations (an index build on a big table) may take as long as they need.
    const answerMs = config.databaseUrl ? (options.answerTimeoutMs ?? 30_000) : undefined
    await within(sql`select 1`, 'connecting', answerMs, options.signal)
    if (options.migrate !== false && !(await within(isMigrated(sql), 'checking migrations', answerMs, options.signal)))
      await within(
        import('./migrate.ts').then(({ migrate }) => migrate(sql, { log: options.log })),
        'migrating',
        undefined,
        options.signal,
      )
  } catch (err) {
    await sql.end({ timeout: 0 }).catch(() => {})
    await embedded?.release()
    throw err
  }
  return {
    sql,
    url,
    embedded: !!embedded,
    async close() {
      await sql.end({ timeout: 5 }).catch(() => {})
      await embedded?.release()
    },
  }
}
