import fs from 'node:fs/promises'
import path from 'node:path'
import { writeFileAtomic } from '../files/atomic.ts'
import { withFileLock } from '../files/lock.ts'
import type { PolicyState, PolicyStore } from './policy.ts'

const dateFields = ['firstFailureAt', 'lastFailureAt', 'lastSuccessAt', 'alertedAt', 'lastNotifiedAt'] as const

/**
 * Policy state as one JSON file per key under `dir`, for what must survive while the database is down (the database
 * target itself). Updates serialise across processes through withFileLock (waiting up to 10s); writes are atomic
 * (writeFileAtomic).
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
  return {
    get: read,
    async update(key, step) {
      await withFileLock(
        `${file(key)}.lock`,
        async () => {
          const next = step(await read(key))
          await writeFileAtomic(file(key), `${JSON.stringify(next, null, 2)}\n`)
        },
        { timeoutMs: 10_000 },
      )
    },
  }
}
