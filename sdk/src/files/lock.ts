import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import { hostname } from 'node:os'
import path from 'node:path'
import { processAlive } from '../runtime/process.ts'
import { sleep } from '../runtime/retry.ts'

/** Who holds a lock directory: written into it as `owner.json` right after it is created. */
interface LockOwner {
  pid: number
  host: string
  token: string
}

/** Options of withFileLock; defaults: wait up to 30s, a lock without a live owner on this host is stale after 30s. */
export interface FileLockOptions {
  /** How long to wait for the lock before failing (default 30s). */
  timeoutMs?: number
  /**
   * Age after which a lock whose owner cannot be checked is taken over: one with no readable owner (its creator died
   * between creating and claiming it) or one held from another host (default 30s). A holder on this host is judged by
   * its pid alone: a live one is never broken, a dead one is replaced at once.
   */
  staleMs?: number
}

async function readOwner(dir: string): Promise<LockOwner | undefined> {
  try {
    const owner = JSON.parse(await fs.readFile(path.join(dir, 'owner.json'), 'utf8')) as Partial<LockOwner>
    return typeof owner.pid === 'number' && typeof owner.host === 'string' && typeof owner.token === 'string'
      ? (owner as LockOwner)
      : undefined
  } catch {
    return undefined
  }
}

/** True when the lock at `dir` (owned by `owner`, if readable) may be taken over. */
async function isStale(dir: string, owner: LockOwner | undefined, staleMs: number): Promise<boolean> {
  if (owner && owner.host === hostname()) return !processAlive(owner.pid)
  const stat = await fs.stat(dir).catch(() => undefined)
  return stat !== undefined && Date.now() - stat.mtimeMs > staleMs
}

/**
 * Takes over a stale lock: renames it aside first (only one waiter's rename succeeds), then checks that what it moved
 * is the lock it judged stale; a lock taken meanwhile by someone else is put back.
 */
async function breakStale(dir: string, judged: LockOwner | undefined): Promise<void> {
  const aside = `${dir}.stale-${process.pid}-${randomBytes(4).toString('hex')}`
  try {
    await fs.rename(dir, aside)
  } catch {
    return
  }
  const moved = await readOwner(aside)
  if (moved?.token !== judged?.token) {
    await fs.rename(aside, dir).catch(() => {})
    return
  }
  await fs.rm(aside, { recursive: true, force: true })
}

/**
 * Runs `fn` holding a cross-process lock: the directory `lockDir` (mkdir is atomic), claimed with the holder's pid,
 * host and a random token, and removed afterwards. Waits for a held lock with jittered polling; takes over a stale one
 * (see FileLockOptions). Throws after `timeoutMs`.
 */
export async function withFileLock<T>(
  lockDir: string,
  fn: () => Promise<T>,
  options: FileLockOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000
  const staleMs = options.staleMs ?? 30_000
  const deadline = Date.now() + timeoutMs
  const me: LockOwner = { pid: process.pid, host: hostname(), token: randomBytes(8).toString('hex') }
  await fs.mkdir(path.dirname(lockDir), { recursive: true })
  for (;;) {
    try {
      await fs.mkdir(lockDir)
      await fs.writeFile(path.join(lockDir, 'owner.json'), JSON.stringify(me))
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = await readOwner(lockDir)
      if (await isStale(lockDir, owner, staleMs)) {
        await breakStale(lockDir, owner)
        continue
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for the lock ${lockDir}`)
      await sleep(20 + Math.random() * 60)
    }
  }
  try {
    return await fn()
  } finally {
    // Remove only our own lock: if it was (wrongly) taken over, the new holder keeps it.
    if ((await readOwner(lockDir))?.token === me.token) await fs.rm(lockDir, { recursive: true, force: true })
  }
}
