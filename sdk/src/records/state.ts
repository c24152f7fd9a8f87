import type { Sql } from 'postgres'
import type { JobState } from '../runtime/types.ts'

/** The durable key/value state of `job` (`jobs.job_state`); in a dry run `set` writes nothing. */
export function createState(sql: Sql, job: string, dryRun: boolean): JobState {
  return {
    async get<T>(key: string) {
      const [row] = await sql<{ value: T }[]>`select value from jobs.job_state where job = ${job} and key = ${key}`
      return row?.value
    },
    async set(key, value, tx) {
      // A dry run must not move watermarks or other state.
      if (dryRun) return
      await (tx ?? sql)`
        insert into jobs.job_state (job, key, value) values (${job}, ${key}, ${(tx ?? sql).json(value as never)})
        on conflict (job, key) do update set value = excluded.value, updated_at = now()`
    },
  }
}
