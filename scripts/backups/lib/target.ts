import { ConfigError } from '@admin-jobs/sdk'

/**
 * How a libpq client (pg_dump, pg_restore) reaches a database: PG* variables only. Nothing about the database goes on
 * its command line, where `ps` would show it to every user of the machine.
 */
export interface LibpqTarget {
  /** `user@host:port/database`, for messages (no password). */
  label: string
  host: string
  port: string
  database: string
  /** PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD (when the URL has one) and the URL's TLS and session options. */
  env: Readonly<Record<string, string>>
}

/** The libpq variable of each connection parameter a URL may carry (postgres.js's `ssl` is mapped to PGSSLMODE). */
const parameterVariables: Readonly<Record<string, string>> = {
  host: 'PGHOST',
  port: 'PGPORT',
  user: 'PGUSER',
  dbname: 'PGDATABASE',
  sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  sslcrl: 'PGSSLCRL',
  sslnegotiation: 'PGSSLNEGOTIATION',
  application_name: 'PGAPPNAME',
  connect_timeout: 'PGCONNECT_TIMEOUT',
  options: 'PGOPTIONS',
  target_session_attrs: 'PGTARGETSESSIONATTRS',
}

/**
 * Turns a postgres:// URL into a libpq target. `variable` names the setting in the ConfigError thrown for a URL that
 * does not parse or carries a parameter pg_dump could not be given (so the dump never connects somewhere else than the
 * job's own pool, or without the TLS settings the URL asks for).
 */
export function libpqTarget(url: string, variable = 'DATABASE_URL'): LibpqTarget {
  let u: URL
  try {
    u = new URL(url)
  } catch (err) {
    throw new ConfigError(`${variable} is not a URL a PostgreSQL client can use`, { variable, cause: err })
  }
  const decode = (s: string) => decodeURIComponent(s)
  const env: Record<string, string> = {}
  // IPv6 literals come bracketed from URL; libpq wants them bare.
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1')
  if (host) env.PGHOST = host
  env.PGPORT = u.port || '5432'
  if (u.username) env.PGUSER = decode(u.username)
  const password = decode(u.password)
  if (password) env.PGPASSWORD = password
  env.PGDATABASE = decode(u.pathname.replace(/^\//, '')) || env.PGUSER || 'postgres'
  for (const [name, value] of u.searchParams) {
    if (name === 'ssl') {
      env.PGSSLMODE ??= value === 'true' ? 'require' : value === 'false' ? 'disable' : value
      continue
    }
    const target = parameterVariables[name]
    if (!target) {
      throw new ConfigError(
        `${variable} has the parameter "${name}", which pg_dump and pg_restore cannot be given (known: ssl, ${Object.keys(parameterVariables).join(', ')})`,
        { variable },
      )
    }
    env[target] = value
  }
  return {
    label: `${env.PGUSER ?? ''}@${env.PGHOST ?? 'localhost'}:${env.PGPORT}/${env.PGDATABASE}`,
    host: env.PGHOST ?? 'localhost',
    port: env.PGPORT!,
    database: env.PGDATABASE,
    env,
  }
}

/** The variables of the job's own environment a PostgreSQL client may see: where programs are, home, locale, time zone. */
export const clientBaseVariables = [
  'PATH',
  'HOME',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'LC_MESSAGES',
  'TZ',
  'TMPDIR',
] as const

/**
 * The whole environment of a pg_dump or pg_restore: `base` (the job's PATH, HOME and locale, see clientBaseVariables)
 * plus the target's PG* variables, and nothing else: no webhook, SMTP or GitHub secret, and no stray PG* setting of
 * the job's environment that would point the client elsewhere. The password travels in PGPASSWORD (readable only by
 * the same user, in /proc), not in a passfile, so that a killed run leaves no file holding it.
 */
export function clientEnv(base: Readonly<Record<string, string>>, target?: LibpqTarget): Record<string, string> {
  return { ...base, ...target?.env }
}

/** True when two targets name the same database on the same server (host, port and database name). */
export function sameDatabase(a: LibpqTarget, b: Pick<LibpqTarget, 'host' | 'port' | 'database'>): boolean {
  const local = (h: string) => (['localhost', '127.0.0.1', '::1'].includes(h) ? 'localhost' : h.toLowerCase())
  return local(a.host) === local(b.host) && a.port === b.port && a.database === b.database
}
