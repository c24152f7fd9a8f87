import { createMasker } from '../config/redact.ts'

/** Structured values attached to a log line. */
export type LogFields = Readonly<Record<string, unknown>>

/** A small scoped logger: readable lines locally, annotations and groups on GitHub Actions. */
export interface Logger {
  debug(message: string, fields?: LogFields): void
  info(message: string, fields?: LogFields): void
  warn(message: string, fields?: LogFields): void
  error(message: string, fields?: LogFields & { error?: Error }): void
  /** Runs `fn` inside a collapsible group on Actions (a header line locally). */
  group<T>(name: string, fn: () => Promise<T>): Promise<T>
  /** A logger whose lines carry an extra scope. */
  child(scope: string): Logger
}

/** The subset of @actions/core the logger uses (loaded lazily, only on Actions). */
export interface ActionsCore {
  info(message: string): void
  debug(message: string): void
  warning(message: string, properties?: { title?: string }): void
  error(message: string, properties?: { title?: string }): void
  startGroup(name: string): void
  endGroup(): void
  setSecret(secret: string): void
}

/** Options of createLogger; defaults: local format on process.stdout/stderr, no secrets, debug off. */
export interface LoggerOptions {
  scope?: string
  secrets?: readonly string[]
  actions?: ActionsCore
  debug?: boolean
  write?: (stream: 'out' | 'err', line: string) => void
  now?: () => Date
  /** Sees every line as written (masked), debug lines included: the run keeps its log in history this way. */
  tap?: (entry: LogEntry) => void
}

/** One log line as the run's history keeps it. */
export interface LogEntry {
  at: Date
  level: 'debug' | 'info' | 'warn' | 'error'
  text: string
}

/** Formats fields as `key=value` pairs; strings with spaces are quoted, errors shown by message. */
export function formatFields(fields: LogFields | undefined): string {
  if (!fields) return ''
  const parts: string[] = []
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || key === 'error') continue
    parts.push(`${key}=${formatValue(value)}`)
  }
  return parts.length ? ` ${parts.join(' ')}` : ''
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) || value === '' ? JSON.stringify(value) : value
  if (value instanceof Date) return value.toISOString()
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Error) return JSON.stringify(value.message)
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

const tolerant = new WeakSet<NodeJS.WritableStream>()

/**
 * Makes a closed stdout/stderr harmless (default: both): when the reader of a pipe went away (`| head -1`), writes
 * fail with EPIPE, and an unhandled stream error would kill the process before it records its run. Such writes are
 * dropped instead; any other stream error still throws. Safe to call more than once.
 */
export function tolerateClosedOutput(streams: NodeJS.WritableStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    if (tolerant.has(stream)) continue
    tolerant.add(stream)
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return
      throw err
    })
  }
}

/** Creates a logger. On Actions every secret is registered with `setSecret` before the first line. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const mask = createMasker(options.secrets ?? [])
  if (!options.write) tolerateClosedOutput()
  const write =
    options.write ??
    ((stream: 'out' | 'err', line: string) => (stream === 'out' ? process.stdout : process.stderr).write(`${line}\n`))
  const now = options.now ?? (() => new Date())
  const core = options.actions
  if (core) for (const secret of options.secrets ?? []) core.setSecret(secret)

  const make = (scope: string | undefined): Logger => {
    const prefix = scope ? `[${scope}] ` : ''
    // Locally a line must never look like a workflow command.
    const local = (level: string, text: string) => {
      const line = `${now().toISOString().slice(11, 23)} ${level.padEnd(5)} ${prefix}${text}`
      return line.replace(/^::/gm, ': :')
    }
    const emit = (level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: LogFields) => {
      const text = mask(`${message}${formatFields(fields)}`)
      const err = fields?.error instanceof Error ? fields.error : undefined
      const stack = err?.stack ? mask(err.stack) : undefined
      options.tap?.({ at: now(), level, text: stack ? `${prefix}${text}\n${stack}` : `${prefix}${text}` })
      if (core) {
        if (level === 'debug') core.debug(`${prefix}${text}`)
        else if (level === 'info') core.info(`${prefix}${text}`)
        else if (level === 'warn') core.warning(`${prefix}${text}`, { title: scope })
        else core.error(stack ? `${prefix}${text}\n${stack}` : `${prefix}${text}`, { title: scope })
        return
      }
      if (level === 'debug' && !options.debug) return
      write(level === 'warn' || level === 'error' ? 'err' : 'out', local(level.toUpperCase(), text))
      if (stack) write('err', local('', stack))
    }
    return {
      debug: (m, f) => emit('debug', m, f),
      info: (m, f) => emit('info', m, f),
      warn: (m, f) => emit('warn', m, f),
      error: (m, f) => emit('error', m, f),
      async group(name, fn) {
        if (core) core.startGroup(mask(`${prefix}${name}`))
        else write('out', local('', `── ${mask(name)}`))
        try {
          return await fn()
        } finally {
          if (core) core.endGroup()
        }
      },
      child: (child) => make(scope ? `${scope}:${child}` : child),
    }
  }
  return make(options.scope)
}
