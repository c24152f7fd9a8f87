import fs from 'node:fs/promises'
import path from 'node:path'

let counter = 0

/** A file being written under a temporary name beside its target, that appears under the target name only on commit. */
export interface AtomicFile {
  /** Where to write meanwhile: `<target>.tmp-<pid>-<n>` by default, in the target's directory (so the rename is atomic). */
  readonly temp: string
  /** fsyncs the temp file, renames it over the target and fsyncs the directory, so the rename survives a crash. */
  commit(): Promise<void>
  /** Removes the temp file (after a failure); never throws. */
  abort(): Promise<void>
}

/** True for a temp file name atomicFile makes (`…​.tmp-<pid>-<n>`), e.g. to clean up after a killed run. */
export function isAtomicTemp(name: string): boolean {
  return /\.tmp-\d+-\d+$/.test(name)
}

/**
 * Starts an atomic write of `target`: write `temp` (a stream or a whole file), then `commit()`; `abort()` on failure.
 * `temp` may be named (e.g. `<file>.partial`, which an operator recognises); it must be in the target's directory.
 */
export function atomicFile(target: string, options: { temp?: string } = {}): AtomicFile {
  const temp = options.temp ?? `${target}.tmp-${process.pid}-${++counter}`
  return {
    temp,
    async commit() {
      await syncPath(temp, 'r+')
      await fs.rename(temp, target)
      await syncPath(path.dirname(target), 'r')
    },
    abort: () => fs.rm(temp, { force: true }).catch(() => {}),
  }
}

/**
 * Writes `data` to `file` atomically (temp file, fsync, rename, fsync of the directory): a reader sees the old file
 * or the new one, never a half-written one, also after a crash. Creates the directory when missing.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true })
  const out = atomicFile(file)
  try {
    await fs.writeFile(out.temp, data)
    await out.commit()
  } catch (err) {
    await out.abort()
    throw err
  }
}

async function syncPath(file: string, flags: 'r' | 'r+'): Promise<void> {
  const handle = await fs.open(file, flags)
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
