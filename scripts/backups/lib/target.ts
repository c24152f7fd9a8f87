import type { Config } from '@admin-jobs/sdk'
import { databaseAddress } from '@admin-jobs/sdk/platform'
import type { Sql } from 'postgres'

/** How a libpq client (pg_dump, pg_restore) reaches a database: a URI without password, plus PGPASSWORD in its env. */
export interface LibpqTarget {
  /** `postgresql://user@host:port/db?sslmode=…`, safe to show (no password). */
  uri: string
  database: string
  env: Record<string, string>
}

/**
 * Turns a postgres:// URL into a libpq target. The password travels in PGPASSWORD, never on a command line (where `ps`
 * shows it); postgres.js's `ssl=true|require|…` becomes libpq's `sslmode`.
 */
export function libpqTarget(url: string): LibpqTarget {
  const u = new URL(url)
  const password = decodeURIComponent(u.password)
  u.password = ''
  const ssl = u.searchParams.get('ssl')
  if (ssl !== null) {
    u.searchParams.delete('ssl')
    if (!u.searchParams.has('sslmode'))
      u.searchParams.set('sslmode', ssl === 'false' ? 'disable' : ssl === 'true' ? 'require' : ssl)
  }
  u.protocol = 'postgresql:'
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres'
  return { uri: u.toString(), database, env: password ? { PGPASSWORD: password } : {} }
}

/** The URL the job's pool is connected to: DATABASE_URL, or the embedded server's (rebuilt from the pool's options). */
export function connectedUrl(sql: Sql, config: Pick<Config, 'databaseUrl'>): string {
  if (config.databaseUrl) return config.databaseUrl
  const o = sql.options as unknown as {
    host: string[]
    port: number[]
    user: string
    pass: string | null
    database: string
  }
  const auth = `${encodeURIComponent(o.user)}${o.pass ? `:${encodeURIComponent(o.pass)}` : ''}`
  return `postgres://${auth}@${o.host[0]}:${o.port[0]}/${encodeURIComponent(o.database)}`
}

/** True when two URLs name the same database on the same server (host, port and database name). */
export function sameDatabase(a: string, b: string): boolean {
  const x = databaseAddress(a)
  const y = databaseAddress(b)
  return x.host === y.host && x.port === y.port && x.database === y.database
}
