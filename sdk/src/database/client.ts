import type { Duplex } from 'node:stream'
import postgres, { type Sql } from 'postgres'
import type { Config } from '../config/config.ts'
import type { Logger } from '../runtime/log.ts'
import { pendingMigrations } from './migrate.ts'
import { createGuardedSocket, type SocketGuards } from './socket.ts'
import { certificateRefused, isCertificateError, readTlsRequest, sslOption, withRootCert } from './tls.ts'

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

/**
 * Options of openDatabase; defaults: pool of 5 with connect()'s limits except statements unbounded (the runner passes
 * the job's limit: a job's big DELETE and `jobs migrate` must not die at connect()'s minute), migrations applied when
 * behind (on a connection of their own, unbounded: an index build takes what it takes), 30 s for the first answer.
 */
export interface OpenOptions extends ConnectOptions {
  log: Logger
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

/**
 * Limits of every connection of a pool; defaults: connect 10 s, idle 30 s, keepalive probes after 10 s idle,
 * statements 60 s (server-side `statement_timeout`; 0 = unbounded), an answer 10 s past the statement limit at most.
 */
export interface ConnectOptions {
  applicationName?: string
  max?: number
  /** TCP connect, TLS, startup and authentication, until the server is ready for a first query. */
  connectTimeoutMs?: number
  /** An unused connection is closed after this long. */
  idleTimeoutMs?: number
  keepAliveMs?: number
  /**
   * The server cancels a statement running longer (57014). A job's pool should get the job's timeout, not this
   * default: a big DELETE must not die at a minute. 0 leaves statements unbounded, and then no answer deadline holds.
   */
  statementTimeoutMs?: number
  /**
   * Past the statement limit the server has answered (with a result or with 57014) unless it or the path to it is
   * gone: after this much more silence the connection is destroyed and its queries fail with ETIMEDOUT.
   */
  answerGraceMs?: number
}

// The sockets of each pool, so `abandon` can destroy them without waiting for a server that may not answer.
const poolSockets = new WeakMap<Sql, Set<Duplex>>()

/** Creates a postgres.js pool with the project's defaults and connection limits (see ConnectOptions). */
export function connect(url: string, options: ConnectOptions = {}): Sql {
  const statementMs = options.statementTimeoutMs ?? 60_000
  const guards: SocketGuards = {
    keepAliveMs: options.keepAliveMs ?? 10_000,
    answerTimeoutMs: statementMs > 0 ? statementMs + (options.answerGraceMs ?? 10_000) : 0,
    lingerMs: 1_000,
  }
  const sockets = new Set<Duplex>()
  let attempts = 0
  // sslmode and sslrootcert as libpq reads them (tls.ts); postgres.js gets the URL without them.
  const tls = readTlsRequest(url)
  const ssl = sslOption(tls)
  const sql = postgres(tls.url, {
    ...(ssl === undefined ? {} : { ssl }),
    max: options.max ?? 5,
    connect_timeout: (options.connectTimeoutMs ?? 10_000) / 1000,
    idle_timeout: (options.idleTimeoutMs ?? 30_000) / 1000,
    // The guarded socket sets keepalive itself; one request at a time per connection is what lets it tell a long
    // statement from a dead server (see createGuardedSocket).
    keep_alive: false as unknown as number,
    max_pipeline: 0,
    socket: (target: Parameters<typeof createGuardedSocket>[0]) => {
      const socket = createGuardedSocket(target, guards, attempts++)
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
      return socket
    },
    onnotice: () => {},
    connection: {
      application_name: options.applicationName ?? 'admin-jobs',
      ...(statementMs > 0 ? { statement_timeout: statementMs } : {}),
    },
  } as postgres.Options<Record<string, never>>)
  poolSockets.set(sql, sockets)
  return sql
}

/**
 * Ends a pool at once: every pending query fails (CONNECTION_DESTROYED) and every socket is destroyed now, without the
 * goodbye a frozen server would never acknowledge. For deadlines; `sql.end()` is the polite way.
 */
export async function abandon(sql: Sql): Promise<void> {
  // The driver settles its queries first (a socket that closed under a connection still connecting would reconnect).
  await sql.end({ timeout: 0 }).catch(() => {})
  for (const socket of poolSockets.get(sql) ?? []) socket.destroy()
}

/** Options of withFreshConnection; default deadline 5 s. */
export interface FreshConnectionOptions {
  /** The whole of connect, `fn` and close; past it the connection is abandoned and the call rejects. */
  deadlineMs?: number
  applicationName?: string
}

/**
 * Runs `fn` on a new single connection that gives up within `deadlineMs`, whatever the server does: for a last write
 * (a run's final record) when the pool it used may be dead. Rejects with an Error (its cause: the driver's error, or
 * the deadline) when the work did not complete in time.
 */
export async function withFreshConnection<T>(
  url: string,
  options: FreshConnectionOptions,
  fn: (sql: Sql) => Promise<T>,
): Promise<T> {
  const deadlineMs = options.deadlineMs ?? 5_000
  const sql = connect(url, {
    max: 1,
    applicationName: options.applicationName,
    connectTimeoutMs: deadlineMs,
    statementTimeoutMs: deadlineMs,
    answerGraceMs: 1_000,
  })
  let timer: NodeJS.Timeout | undefined
  const late = Symbol('late')
  const deadline = new Promise<typeof late>((resolve) => {
    timer = setTimeout(() => resolve(late), deadlineMs)
  })
  const work = fn(sql)
  // Past the deadline `work` still settles (its queries fail when the pool is abandoned): nobody awaits it then.
  work.catch(() => {})
  let result: T | typeof late
  try {
    result = await Promise.race([work, deadline])
  } catch (err) {
    clearTimeout(timer)
    await abandon(sql)
    throw new Error('the database failed the work on a fresh connection', { cause: err })
  }
  clearTimeout(timer)
  if (result === late) {
    await abandon(sql)
    throw new Error(`the database did not complete the work within ${deadlineMs} ms on a fresh connection`)
  }
  // Done: say goodbye; the socket's linger bounds the wait for a server that went quiet just now.
  await sql.end({ timeout: 0 }).catch(() => {})
  return result
}

/** True when the database has every SDK migration applied (two cheap queries). */
export async function isMigrated(sql: Sql): Promise<boolean> {
  return (await pendingMigrations(sql)).pending.length === 0
}

/** The URL a run connects to when DATABASE_URL is set (with PGSSLROOTCERT folded in); undefined for the embedded server. */
export function configuredUrl(config: Config): string | undefined {
  return config.databaseUrl ? withRootCert(config.databaseUrl, config.databaseRootCert) : undefined
}

/**
 * Opens DATABASE_URL (with PGSSLROOTCERT as its sslrootcert when the URL names none), or the shared embedded
 * PostgreSQL when it is unset (parseConfig already refused that on CI).
 * Pending migrations are applied unless `migrate: false`.
 */
export async function openDatabase(config: Config, options: OpenOptions): Promise<Database> {
  // The embedded server's code loads only for local runs without DATABASE_URL.
  const embedded = config.databaseUrl
    ? undefined
    : await (await import('./embedded.ts')).ensureEmbedded({ dataDir: config.dataDir, log: options.log })
  const url = configuredUrl(config) ?? embedded!.url
  const sql = connect(url, { ...options, statementTimeoutMs: options.statementTimeoutMs ?? 0 })
  try {
    // The first answer has a deadline; migrations (an index build on a big table) may take as long as they need.
    // The migration check is that first answer (one round trip less than a `select 1` before it).
    const answerMs = config.databaseUrl ? (options.answerTimeoutMs ?? 30_000) : undefined
    const migrated =
      options.migrate === false
        ? await within(sql`select 1`, 'connecting', answerMs, options.signal).then(() => true)
        : await within(isMigrated(sql), 'connecting', answerMs, options.signal)
    if (!migrated) {
      const { migrate } = await import('./migrate.ts')
      const migrator = connect(url, { max: 1, applicationName: options.applicationName, statementTimeoutMs: 0 })
      try {
        await within(migrate(migrator, { log: options.log }), 'migrating', undefined, options.signal)
      } finally {
        await migrator.end({ timeout: 5 }).catch(() => {})
      }
    }
  } catch (err) {
    await sql.end({ timeout: 0 }).catch(() => {})
    await embedded?.release()
    throw isCertificateError(err) ? certificateRefused(url, err as Error) : err
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
