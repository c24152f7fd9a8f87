import type { ReservedSql, Sql } from 'postgres'

/** A held job lock: a session advisory lock on a reserved connection, freed by `release` or when the process dies. */
export interface JobLock {
  readonly connection: ReservedSql
  release(): Promise<void>
}

/** The advisory-lock key of a job (stable across processes). */
export function lockName(job: string): string {
  return `admin-jobs:job:${job}`
}

/** Tries to take the job's lock without waiting; undefined when another run holds it. */
export async function tryLockJob(sql: Sql, job: string): Promise<JobLock | undefined> {
  const connection = await sql.reserve()
  try {
    // The lock lives as long as this session. If the runner's machine vanishes without closing the socket (a runner VM
    // torn down), the server would keep the session, and the lock, for the OS default of two hours; TCP keepalives
    // let it notice a dead peer within about a minute. (Ignored on Unix sockets, where a dead peer is seen at once.)
    await connection`
      select set_config('tcp_keepalives_idle', '30', false), set_config('tcp_keepalives_interval', '10', false),
             set_config('tcp_keepalives_count', '3', false)`
    const [row] = await connection<
      { locked: boolean }[]
    >`select pg_try_advisory_lock(hashtext(${lockName(job)})) as locked`
    if (!row?.locked) {
      connection.release()
      return undefined
    }
  } catch (err) {
    connection.release()
    throw err
  }
  return {
    connection,
    async release() {
      try {
        await connection`select pg_advisory_unlock(hashtext(${lockName(job)}))`
      } finally {
        connection.release()
      }
    },
  }
}
