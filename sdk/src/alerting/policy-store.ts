import fs from 'node:fs/promises'
import path from 'node:path'
import { sleep } from '../runtime/retry.ts'
import type { PolicyState, PolicyStore } from './policy.ts'

const dateFields = ['firstFailureAt', 'lastFailureAt', 'lastSuccessAt', 'alertedAt', 'lastNotifiedAt'] as const

/**
 * Policy state as one JSON file per key under `dir`, for what must survive while the database is down (the database
 * target itself). Updates serialise across processes through a lock directory (stale after 30s); writes are atomic
 * (temp file + rename).
 */
export function createFilePolicyStore(dir: string): PolicyStore {
  const file = (key: string) => path.join(dir, `${key.replace(/[^\w.-]/g, '_')}.json`)
  const read = async (key: string): Promise<PolicyState | undefined> => {
    let text: string
    try {
      text = await fs.readFile(file(key), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    const raw = JSON.parse(text) as Record<string, unknown>
    const state = { ...raw } as unknown as PolicyState
    for (const f of dateFields) state[f] = raw[f] ? new Date(raw[f] as string) : null
    return state
  }
  const lock = async (key: string): Promise<() => Promise<void>> => {
    const lockDir = `${file(key)}.lock`
    const until = Date.now() + 10_000
    for (;;) {
      try {
        await fs.mkdir(lockDir)
        return () => fs.rm(lockDir, { recursive: true, force: true })
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
        const stat = await fs.stat(lockDir).catch(() => undefined)
        // A process that died holding the lock must not block the incident forever.
        if (stat && Date.now() - stat.mtimeMs > 30_000) await fs.rm(lockDir, { recursive: true, force: true })
        if (Date.now() > until) throw new Error(`could not lock ${lockDir} within 10s`)
        await sleep(10 + Math.random() * 20)
      }
    }
  }
  return {
    get: read,
    async update(key, step) {
      await fs.mkdir(dir, { recursive: true })
      const release = await lock(key)
      try {
        const next = step(await read(key))
        const tmp = `${file(key)}.${process.pid}.tmp`
        await fs.writeFile(tmp, `${JSON.stringify(next, null, 2)}\n`)
        await fs.rename(tmp, file(key))
      } finally {
        await release()
      }
    },
  }
}
