import { createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { atomicFile, createHashingStream, sha256sumLine, writeFileAtomic } from '@admin-jobs/sdk'
import { processMessage, startClient } from './client.ts'
import { partialSuffix } from './leftovers.ts'
import { clientEnv, type LibpqTarget } from './target.ts'

/** The checksum file of a dump: `<file>.sha256`, in `sha256sum` format so `sha256sum -c` checks it. */
export function checksumFileOf(dumpFile: string): string {
  return `${dumpFile}.sha256`
}

/** Reads the hex digest from a `.sha256` file; undefined when absent or malformed. */
export async function readChecksum(dumpFile: string): Promise<string | undefined> {
  const text = await fs.readFile(checksumFileOf(dumpFile), 'utf8').catch(() => undefined)
  return text ? /^([0-9a-f]{64})\b/.exec(text.trim())?.[1] : undefined
}

/** What dumpDatabase wrote. */
export interface DumpResult {
  file: string
  sizeBytes: number
  sha256: string
  dumpMs: number
}

/**
 * Runs `pg_dump --format=custom` (without a shell, see startClient) with its output streamed into `<file>.partial` and
 * through sha256 at once, so the dump is never read back to checksum it. pg_dump sees only `env` (PATH, HOME, locale)
 * and the target's PG* variables (see clientEnv): its command line names no database and its environment holds no
 * other secret. Then writes `<file>.sha256` and renames the dump into place: a dump that exists under its final name is
 * complete. A dump written to a stream carries no data offsets in its table of contents; pg_restore finds the data by
 * scanning, in parallel restores too. `snapshot` makes pg_dump read an exported snapshot. Aborting `signal` stops
 * pg_dump (SIGTERM); the partial file is removed on any failure (a run killed outright leaves it to cleanLeftovers).
 */
export async function dumpDatabase(options: {
  pgDump: string
  target: LibpqTarget
  env: Readonly<Record<string, string>>
  file: string
  snapshot?: string
  compression?: number
  signal?: AbortSignal
}): Promise<DumpResult> {
  const out = atomicFile(options.file, { temp: `${options.file}${partialSuffix}` })
  await fs.mkdir(path.dirname(options.file), { recursive: true })
  const started = performance.now()
  const extra = [
    ...(options.snapshot ? [`--snapshot=${options.snapshot}`] : []),
    ...(options.compression !== undefined ? [`--compress=${options.compression}`] : []),
  ]
  try {
    const dump = startClient(options.pgDump, ['--format=custom', '--no-password', ...extra], {
      env: clientEnv(options.env, options.target),
      signal: options.signal,
    })
    const digest = createHashingStream()
    const written = pipeline(dump.stdout, digest.stream, createWriteStream(out.temp))
    // Both settle before the partial file is removed. A failed write (a full disk) closes the pipe, which stops
    // pg_dump too: the write error is the cause to report.
    const [ran, wrote] = await Promise.allSettled([dump.done, written])
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
