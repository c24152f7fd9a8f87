/** A missing or malformed setting, flag or job id: the runner exits 2 before any connection or write. */
export class ConfigError extends Error {
  override name = 'ConfigError'
  /** The environment variable or flag at fault, when there is one. */
  readonly variable: string | undefined
  constructor(message: string, options?: { variable?: string; cause?: unknown }) {
    super(message, { cause: options?.cause })
    this.variable = options?.variable
  }
}

/** A failure that retrying cannot fix; the runner never retries it. */
export class NonRetryableError extends Error {
  override name = 'NonRetryableError'
}

/** Raised inside a job when its AbortSignal fired (timeout or SIGINT/SIGTERM). */
export class AbortedError extends Error {
  override name = 'AbortedError'
}

const transientSqlStates = new Set(['40001', '40P01', '57P01', '57P02', '57P03', '53300', '55P03'])
const transientErrnos = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
])

/** True when retrying may help: SQLSTATE 40001/40P01/57P0x/08xxx, network errnos, HTTP 429/5xx. Classified by code, never by message. */
export function isTransient(err: unknown): boolean {
  if (err instanceof NonRetryableError || err instanceof ConfigError || err instanceof AbortedError) return false
  if (typeof err !== 'object' || err === null) return false
  const e = err as { code?: unknown; status?: unknown; statusCode?: unknown; cause?: unknown }
  if (typeof e.code === 'string') {
    if (e.code.startsWith('08') && e.code.length === 5) return true
    if (transientSqlStates.has(e.code) || transientErrnos.has(e.code)) return true
  }
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined
  if (status !== undefined && (status === 429 || status >= 500)) return true
  return e.cause !== undefined && e.cause !== err ? isTransient(e.cause) : false
}

/** Normalises anything thrown into an Error (done once, in the runner's catch). */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value
  return new Error(typeof value === 'string' ? value : `non-error thrown: ${safeString(value)}`)
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value)
  } catch {
    return String(value)
  }
}

/** The first line of an error's message, for alerts and one-line logs. */
export function firstLine(err: Error): string {
  return (err.message.split('\n')[0] ?? '').slice(0, 500)
}
