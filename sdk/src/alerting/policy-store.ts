import fs from 'node:fs/promises'
import path from 'node:path'
import type { Sql } from 'postgres'
import { writeFileAtomic } from '../files/atomic.ts'
import { withFileLock } from '../files/lock.ts'
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
