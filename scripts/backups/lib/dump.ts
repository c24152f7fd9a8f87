import { createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { atomicFile, createHashingStream, sha256sumLine, writeFileAtomic } from '@admin-jobs/sdk'
import type { LibpqTarget } from './target.ts'

/** The checksum file of a dump: `<file>.sha256`, in `sha256sum` format so `sha256sum -c` checks it. */
export function checksumFileOf(dumpFile: string): string {
  return `${dumpFile}.sha256`
}

/** Reads the hex digest from a `.sha256` file; undefined when absent or malformed. */
export async function readChecksum(dumpFile: string): Promise<string | undefined> {
  const text = await fs.readFile(checksumFileOf(dumpFile), 'utf8').catch(() => undefined)
  return text ? /^([0-9a-f]{64})\b/.exec(text.trim())?.[1] : undefined
}

/** The environment of a libpq client: the process's (for PATH, locale) plus the target's PGPASSWORD, minus stray PG* settings. */
export function clientEnv(target: LibpqTarget): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v
  return { ...env, ...target.env }
}

/** What dumpDatabase wrote. */
export interface DumpResult {
  file: string
  sizeBytes: number
  sha256: string
  dumpMs: number
}

/** zx loaded once, and early: start loading it while the job does its other set-up, so the dump does not wait on it. */
let zx: Promise<typeof import('zx')> | undefined
export function loadZx(): Promise<typeof import('zx')> {
  zx ??= import('zx')
  return zx
}

/** A zx output store that keeps nothing: the dump streams to disk through the hash, never into memory. */
function discardingStore() {
  const discard = Object.assign([] as Buffer[], { push: () => 0 })
  return { stdout: discard, stdall: discard, stderr: [] as Buffer[] }
}

/**
 * Runs `pg_dump --format=custom` (through zx) with its output streamed into `<file>.partial` and through sha256 at
 * once, so the dump is never read back to checksum it. Then writes `<file>.sha256` and renames the dump into place: a
 * dump that exists under its final name is complete. A dump written to a stream carries no data offsets in its table of
 * contents; pg_restore finds the data by scanning, in parallel restores too. `snapshot` makes pg_dump read an exported
 * snapshot. Aborting `signal` kills pg_dump; the partial file is removed on any failure.
 */
export async function dumpDatabase(options: {
  pgDump: string
  target: LibpqTarget
  file: string
  snapshot?: string
  compression?: number
  signal?: AbortSignal
}): Promise<DumpResult> {
  const { $ } = await loadZx()
  const out = atomicFile(options.file, { temp: `${options.file}.partial` })
  await fs.mkdir(path.dirname(options.file), { recursive: true })
  const started = performance.now()
  const extra = [
    ...(options.snapshot ? [`--snapshot=${options.snapshot}`] : []),
    ...(options.compression !== undefined ? [`--compress=${options.compression}`] : []),
  ]
  try {
    const dump = $({
      env: clientEnv(options.target),
      quiet: true,
      signal: options.signal,
      store: discardingStore(),
    })`${options.pgDump} --format=custom --no-password ${extra} --dbname=${options.target.uri}`
    const digest = createHashingStream()
    const written = pipeline(dump.stdout, digest.stream, createWriteStream(out.temp))
    // Both settle before the partial file is removed. A failed write (a full disk) closes the pipe, which stops
    // pg_dump too: the write error is the cause to report.
    const [ran, wrote] = await Promise.allSettled([dump, written])
    if (wrote.status === 'rejected') throw wrote.reason
    if (ran.status === 'rejected') throw ran.reason
    const dumpMs = Math.round(performance.now() - started)
    const sha256 = digest.sha256()
    await writeFileAtomic(checksumFileOf(options.file), sha256sumLine(sha256, path.basename(options.file)))
    await out.commit()
    return { file: options.file, sizeBytes: digest.bytes, sha256, dumpMs }
  } catch (err) {
    await out.abort()
    throw new Error(`pg_dump of ${options.target.database} failed: ${processMessage(err)}`, { cause: err })
  }
}

/** The useful line of a failed child process (its last stderr line), else the error's message. */
export function processMessage(err: unknown): string {
  const e = err as { stderr?: string; exitCode?: number | null; message?: string }
  const stderr = typeof e.stderr === 'string' ? e.stderr.trim().split('\n').filter(Boolean).at(-1) : undefined
  if (stderr) return `${stderr}${e.exitCode != null ? ` (exit ${e.exitCode})` : ''}`
  return String(e.message ?? err).split('\n')[0]!
}
