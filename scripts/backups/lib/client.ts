import { spawn } from 'node:child_process'
import type { Readable } from 'node:stream'

/** How much of a client's stderr is kept for its error message (the tail: the last lines say what went wrong). */
const stderrLimit = 16_384

/** A client program that failed: its exit code (null when killed) and the tail of its stderr. */
export interface ClientError extends Error {
  exitCode: number | null
  stderr: string
}

/** A running client program: its stdout to consume, and `done`, which settles when it has exited. */
export interface RunningClient {
  stdout: Readable
  done: Promise<void>
}

/**
 * Starts a PostgreSQL client program (pg_dump, pg_restore) directly, without a shell: its environment is exactly `env`
 * (a shell would add what its startup files say; Debian's bash reads ~/.bashrc when its stdin is a socket, as a
 * child's pipe is), and its arguments are never parsed again. Aborting `signal` sends it SIGTERM. `done` rejects with
 * a ClientError when it exits non-zero or is killed.
 */
export function startClient(
  file: string,
  args: readonly string[],
  options: { env: Readonly<Record<string, string>>; signal?: AbortSignal },
): RunningClient {
  const child = spawn(file, args, {
    env: options.env,
    signal: options.signal,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-stderrLimit)
  })
  const done = new Promise<void>((resolve, reject) => {
    let spawnError: Error | undefined
    child.on('error', (err) => {
      spawnError = err
    })
    child.on('close', (code, signal) => {
      if (code === 0 && !spawnError) return resolve()
      const what = signal ? `killed by ${signal}` : spawnError ? spawnError.message : `exit ${code}`
      const error = new Error(`${file} failed (${what})`, { cause: spawnError }) as ClientError
      error.exitCode = code
      error.stderr = stderr
      reject(error)
    })
  })
  return { stdout: child.stdout, done }
}

/** Runs a client to its end and returns its stdout split into lines (for `pg_restore --list`). */
export async function clientLines(
  file: string,
  args: readonly string[],
  options: { env: Readonly<Record<string, string>>; signal?: AbortSignal },
): Promise<string[]> {
  const client = startClient(file, args, options)
  let text = ''
  client.stdout.setEncoding('utf8')
  client.stdout.on('data', (chunk: string) => {
    text += chunk
  })
  await client.done
  return text.split('\n')
}

/** The useful line of a failed client (its last stderr line and exit code), else the error's message. */
export function processMessage(err: unknown): string {
  const e = err as Partial<ClientError>
  const stderr = typeof e.stderr === 'string' ? e.stderr.trim().split('\n').filter(Boolean).at(-1) : undefined
  if (stderr) return `${stderr}${e.exitCode != null ? ` (exit ${e.exitCode})` : ''}`
  return String(e.message ?? err).split('\n')[0]!
}
