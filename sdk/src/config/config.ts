import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { singleAddress, whyNotAnAddress } from '../alerting/recipients.ts'
import { readTlsRequest, type TlsRequest } from '../database/tls.ts'
import { ConfigError } from '../runtime/errors.ts'
import { type Duration, parseDuration, toMs } from '../text/duration.ts'
import { redactUrl } from './redact.ts'

/** The environment a configuration is read from; tests pass their own. */
export type Env = Readonly<Record<string, string | undefined>>

/** The validated, frozen configuration every job shares (docs/reference.md, "Environment"). */
export interface Config {
  readonly databaseUrl: string | undefined
  /** PGSSLROOTCERT: a file of CA certificates for DATABASE_URL's `sslmode=verify-full` (its `sslrootcert` wins). */
  readonly databaseRootCert: string | undefined
  readonly slackWebhookUrl: string | undefined
  readonly smtpUrl: string | undefined
  /**
   * The sender's address (ALERT_EMAIL_FROM; default `admin-jobs@<domain of the first ALERT_EMAIL_TO>`, else
   * `admin-jobs@<host>`); mail names it `admin-jobs (<environment>)`.
   */
  readonly alertEmailFrom: string
  readonly alertEmailTo: readonly string[]
  readonly healthcheckUrls: readonly string[]
  readonly heartbeatUrl: string | undefined
  /** The deployment's name in notices (ADMIN_JOBS_ENVIRONMENT; default GITHUB_REPOSITORY on Actions, else the host). */
  readonly environment: string
  readonly dataDir: string
  readonly reportsDir: string
  readonly archiveDir: string
  readonly backupDir: string
  readonly auditLogRetentionDays: number
  readonly expiryNoticeDays: readonly number[]
  readonly github: Readonly<{
    token: string | undefined
    repository: string | undefined
    apiUrl: string
    serverUrl: string
    runId: string | undefined
    runAttempt: number
    eventName: string | undefined
    workflow: string | undefined
  }>
  readonly ci: boolean
  readonly actions: boolean
  readonly dryRun: boolean
  /** Every secret value found in the environment, for masking. */
  readonly secrets: readonly string[]
}

/** Typed readers over one Env: each names the variable in its ConfigError. Used by parseConfig and by jobs' `settings`. */
export interface EnvReader {
  string(name: string): string | undefined
  string(name: string, fallback: string): string
  url(name: string, protocols: readonly string[]): string | undefined
  integer(name: string, fallback: number, range?: { min?: number; max?: number }): number
  number(name: string, fallback: number, range?: { min?: number; max?: number }): number
  boolean(name: string, fallback: boolean): boolean
  list(name: string, fallback?: readonly string[]): string[]
  integerList(name: string, fallback: readonly number[], range?: { min?: number; max?: number }): number[]
  duration(name: string, fallback: Duration): number
  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T
}

/** Builds the typed readers for an Env. Empty strings count as unset. */
export function createEnvReader(env: Env): EnvReader {
  const raw = (name: string): string | undefined => {
    const value = env[name]?.trim()
    return value === undefined || value === '' ? undefined : value
  }
  const fail = (name: string, problem: string): never => {
    throw new ConfigError(`${name} ${problem}`, { variable: name })
  }
  const inRange = (name: string, n: number, range?: { min?: number; max?: number }) => {
    if (range?.min !== undefined && n < range.min) fail(name, `must be at least ${range.min} (got ${n})`)
    if (range?.max !== undefined && n > range.max) fail(name, `must be at most ${range.max} (got ${n})`)
    return n
  }
  const toInteger = (name: string, text: string, range?: { min?: number; max?: number }) => {
    if (!/^-?\d+$/.test(text)) fail(name, `must be a whole number (got "${text}")`)
    return inRange(name, Number(text), range)
  }
  const reader: EnvReader = {
    string: ((name: string, fallback?: string) => raw(name) ?? fallback) as EnvReader['string'],
    url(name, protocols) {
      const value = raw(name)
      if (value === undefined) return undefined
      let parsed: URL
      try {
        parsed = new URL(value)
      } catch {
        return fail(name, `is not a valid URL (got "${redactUrl(value)}")`)
      }
      if (!protocols.includes(parsed.protocol.replace(/:$/, ''))) {
        fail(name, `must use ${protocols.map((p) => `${p}://`).join(' or ')} (got "${redactUrl(value)}")`)
      }
      if (!parsed.hostname) fail(name, `has no host (got "${redactUrl(value)}")`)
      // Clients decode the user and password: a stray `%` (say, in a password) must be written `%25`.
      try {
        decodeURIComponent(parsed.username)
        decodeURIComponent(parsed.password)
        decodeURIComponent(parsed.pathname)
      } catch {
        fail(name, `has a malformed %-escape in its user, password or path (write a literal % as %25)`)
      }
      return value
    },
    integer(name, fallback, range) {
      const value = raw(name)
      return value === undefined ? fallback : toInteger(name, value, range)
    },
    number(name, fallback, range) {
      const value = raw(name)
      if (value === undefined) return fallback
      const n = Number(value)
      if (!/^-?\d*\.?\d+$/.test(value) || !Number.isFinite(n)) fail(name, `must be a number (got "${value}")`)
      return inRange(name, n, range)
    },
    boolean(name, fallback) {
      const value = raw(name)?.toLowerCase()
      if (value === undefined) return fallback
      if (['true', '1', 'yes'].includes(value)) return true
      if (['false', '0', 'no'].includes(value)) return false
      return fail(name, `must be true or false (got "${value}")`)
    },
    list(name, fallback = []) {
      const value = raw(name)
      if (value === undefined) return [...fallback]
      return value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    },
    integerList(name, fallback, range) {
      const value = raw(name)
      if (value === undefined) return [...fallback]
      const items = value.split(',').map((s) => s.trim())
      if (items.some((s) => s === '')) fail(name, `must be a comma-separated list of whole numbers (got "${value}")`)
      return items.map((s) => toInteger(name, s, range))
    },
    duration(name, fallback) {
      const value = raw(name)
      if (value === undefined) return toMs(fallback)
      return (
        parseDuration(value, { bare: 's' }) ?? fail(name, `must be a duration such as 30s, 15m or 2h (got "${value}")`)
      )
    },
    oneOf(name, allowed, fallback) {
      const value = raw(name)
      if (value === undefined) return fallback
      if (!(allowed as readonly string[]).includes(value))
        fail(name, `must be one of ${allowed.join(', ')} (got "${value}")`)
      return value as (typeof allowed)[number]
    },
  }
  return reader
}

/** Names of variables whose values are secrets (masked on Actions, never printed). */
export const secretVariables = [
  'DATABASE_URL',
  'TEST_DATABASE_URL',
  'BACKUP_VERIFY_DATABASE_URL',
  'SLACK_WEBHOOK_URL',
  'SMTP_URL',
  'HEARTBEAT_URL',
  'GITHUB_TOKEN',
] as const

/**
 * Parses and validates the shared settings (docs/reference.md, "Environment") from `env`; throws ConfigError naming the
 * variable. Default data dir: `<cwd>/.data`. `read` reads `env` (default createEnvReader(env); `--help` passes one
 * that records what is read).
 */
export function parseConfig(env: Env = process.env, cwd = process.cwd(), read = createEnvReader(env)): Config {
  const dataDir = path.resolve(cwd, read.string('ADMIN_JOBS_DATA_DIR', '.data'))
  const emails = (name: string, fallback: string[]) => {
    const list = read.list(name, fallback)
    for (const address of list) {
      if (!singleAddress(address))
        throw new ConfigError(`${name} has an invalid email address "${address}" (${whyNotAnAddress(address)})`, {
          variable: name,
        })
    }
    return list
  }
  const healthcheckUrls = read.list('HEALTHCHECK_URLS')
  healthcheckUrls.forEach((value, i) => {
    try {
      const u = new URL(value)
      if (!['http:', 'https:'].includes(u.protocol)) throw new Error('protocol')
    } catch {
      throw new ConfigError(`HEALTHCHECK_URLS entry ${i + 1} is not an http(s) URL (got "${redactUrl(value)}")`, {
        variable: 'HEALTHCHECK_URLS',
      })
    }
  })
  const databaseUrl = read.url('DATABASE_URL', ['postgres', 'postgresql'])
  // Only CI=true means anything here; some CI systems set CI to their own name, which is not an error.
  const ci = read.string('CI')?.toLowerCase() === 'true'
  const actions = read.boolean('GITHUB_ACTIONS', false)
  if (!databaseUrl && (ci || actions)) {
    throw new ConfigError(
      `DATABASE_URL is not set: it is required when ${actions ? 'GITHUB_ACTIONS' : 'CI'}=true (the embedded PostgreSQL is for local runs only)`,
      { variable: 'DATABASE_URL' },
    )
  }
  const databaseRootCert = databaseTls(read, databaseUrl, cwd)
  const alertEmailTo = emails('ALERT_EMAIL_TO', [])
  const from = read.string('ALERT_EMAIL_FROM')
  if (from !== undefined && !singleAddress(from))
    throw new ConfigError(`ALERT_EMAIL_FROM must be one email address (got "${from}": ${whyNotAnAddress(from)})`, {
      variable: 'ALERT_EMAIL_FROM',
    })
  // Unset: admin-jobs at the admins' own domain (mail their relay accepts and their filters trust), else at this host.
  const alertEmailFrom = from ?? `admin-jobs@${alertEmailTo[0]?.split('@')[1] ?? os.hostname()}`
  const repository = read.string('GITHUB_REPOSITORY')
  if (repository !== undefined && !/^[\w.-]+\/[\w.-]+$/.test(repository)) {
    throw new ConfigError(`GITHUB_REPOSITORY must be owner/name (got "${repository}")`, {
      variable: 'GITHUB_REPOSITORY',
    })
  }
  const secrets = secretVariables
    .map((name) => env[name]?.trim())
    .filter((v): v is string => !!v)
    .flatMap((v) => {
      // The password alone is what must never leak, also when printed apart from its URL.
      try {
        const u = new URL(v)
        return u.password ? [v, decodeURIComponent(u.password)] : [v]
      } catch {
        return [v]
      }
    })
  const config: Config = {
    databaseUrl,
    databaseRootCert,
    slackWebhookUrl: read.url('SLACK_WEBHOOK_URL', ['http', 'https']),
    smtpUrl: read.url('SMTP_URL', ['smtp', 'smtps']),
    alertEmailFrom,
    alertEmailTo,
    healthcheckUrls,
    heartbeatUrl: read.url('HEARTBEAT_URL', ['http', 'https']),
    environment: read.string('ADMIN_JOBS_ENVIRONMENT') ?? (actions && repository ? repository : os.hostname()),
    dataDir,
    reportsDir: path.resolve(cwd, read.string('REPORTS_DIR', path.join(dataDir, 'reports'))),
    archiveDir: path.resolve(cwd, read.string('ARCHIVE_DIR', path.join(dataDir, 'archive'))),
    backupDir: path.resolve(cwd, read.string('BACKUP_DIR', path.join(dataDir, 'backups'))),
    auditLogRetentionDays: read.integer('AUDIT_LOG_RETENTION_DAYS', 90, { min: 1, max: 36_500 }),
    expiryNoticeDays: [...new Set(read.integerList('EXPIRY_NOTICE_DAYS', [30, 7, 1], { min: 0, max: 3650 }))].sort(
      (a, b) => b - a,
    ),
    github: {
      token: read.string('GITHUB_TOKEN'),
      repository,
      apiUrl: (read.url('GITHUB_API_URL', ['http', 'https']) ?? 'https://api.github.com').replace(/\/$/, ''),
      serverUrl: (read.url('GITHUB_SERVER_URL', ['http', 'https']) ?? 'https://github.com').replace(/\/$/, ''),
      runId: read.string('GITHUB_RUN_ID'),
      runAttempt: read.integer('GITHUB_RUN_ATTEMPT', 1, { min: 1 }),
      eventName: read.string('GITHUB_EVENT_NAME'),
      workflow: read.string('GITHUB_WORKFLOW'),
    },
    ci,
    actions,
    dryRun: read.boolean('DRY_RUN', false),
    secrets,
  }
  return deepFreeze(config)
}

/**
 * Checks DATABASE_URL's sslmode and the CA file it will be verified against (its `sslrootcert`, else PGSSLROOTCERT),
 * so a typo or a CA file the workflow did not write is a configuration error, not a failed connection. Returns
 * PGSSLROOTCERT resolved against `cwd`.
 */
function databaseTls(read: EnvReader, databaseUrl: string | undefined, cwd: string): string | undefined {
  const rootCert = read.string('PGSSLROOTCERT')
  const resolved = rootCert && rootCert !== 'system' ? path.resolve(cwd, rootCert) : rootCert
  if (!databaseUrl) return resolved
  let request: TlsRequest
  try {
    request = readTlsRequest(databaseUrl)
  } catch (err) {
    throw new ConfigError(`DATABASE_URL: ${(err as Error).message}`, { variable: 'DATABASE_URL', cause: err })
  }
  const [variable, file] = request.sslrootcert ? ['DATABASE_URL', request.sslrootcert] : ['PGSSLROOTCERT', resolved]
  if (file && file !== 'system' && !fs.existsSync(file))
    throw new ConfigError(`${variable}: the CA certificate file ${file} does not exist`, { variable })
  return resolved
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
