import fs from 'node:fs/promises'
import path from 'node:path'
import type { Sql } from 'postgres'
import { sleep } from '../runtime/retry.ts'
import type { PolicyState, PolicyStore } from './policy.ts'

interface StateRow {
  failures: number
  first_failure_at: Date | null
  last_failure_at: Date | null
  last_success_at: Date | null
  alerted_at: Date | null
  last_notified_at: Date | null
  notifications: number
  suppressed_by: string | null
  last_error: string | null
}

const fromRow = (r: StateRow): PolicyState => ({
  failures: r.failures,
  firstFailureAt: r.first_failure_at,
  lastFailureAt: r.last_failure_at,
  lastSuccessAt: r.last_success_at,
  alertedAt: r.alerted_at,
  lastNotifiedAt: r.last_notified_at,
  notifications: r.notifications,
  suppressedBy: r.suppressed_by,
  lastError: r.last_error,
})

/** Policy state in `jobs.alert_policy_state`; each update runs in a transaction holding the key's row lock. */
export function createSqlPolicyStore(sql: Sql): PolicyStore {
  return {
    async get(key) {
      const [row] = await sql<StateRow[]>`select * from jobs.alert_policy_state where key = ${key}`
      return row ? fromRow(row) : undefined
    },
    async update(key, step) {
      await sql.begin(async (tx) => {
        await tx`insert into jobs.alert_policy_state (key) values (${key}) on conflict (key) do nothing`
        const [row] = await tx<StateRow[]>`select * from jobs.alert_policy_state where key = ${key} for update`
        const s = step(row!.failures === 0 && !row!.last_success_at && !row!.alerted_at ? undefined : fromRow(row!))
        await tx`
          update jobs.alert_policy_state set
            failures = ${s.failures}, first_failure_at = ${s.firstFailureAt}, last_failure_at = ${s.lastFailureAt},
            last_success_at = ${s.lastSuccessAt}, alerted_at = ${s.alertedAt}, last_notified_at = ${s.lastNotifiedAt},
            notifications = ${s.notifications}, suppressed_by = ${s.suppressedBy}, last_error = ${s.lastError},
            updated_at = now()
          where key = ${key}`
      })
    },
  }
}

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
