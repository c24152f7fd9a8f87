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

/** How often a held lock checks its connection (5 s), and how long one check may take (10 s). */
export const lockCheck = Object.freeze({ everyMs: 5_000, timeoutMs: 10_000 })

/** Options of tryLockJob: `onLost` is called once when the lock's connection fails a check (the lock is gone). */
export interface LockOptions {
  onLost?: (error: Error) => void
}

/**
 * Tries to take the job's lock without waiting; undefined when another run holds it. The lock lives as long as its
 * connection, so while held the connection is checked every few seconds: a dropped or frozen connection means the
 * lock is gone, and `onLost` lets the run stop before its next side effect.
 */
export async function tryLockJob(sql: Sql, job: string, options: LockOptions = {}): Promise<JobLock | undefined> {
  const connection = await sql.reserve()
  try {
    // The lock lives as long as this session. If the runner's machine vanishes without closing the socket (a runner VM
    // torn down), the server would keep the session, and the lock, for the OS default of two hours; TCP keepalives
    // let it notice a dead peer within about a minute. (Ignored on Unix sockets, where a dead peer is seen at once.)
    // One round trip: the settings and the lock in one statement.
    const [row] = await connection<{ locked: boolean }[]>`
      select set_config('tcp_keepalives_idle', '30', false), set_config('tcp_keepalives_interval', '10', false),
             set_config('tcp_keepalives_count', '3', false), pg_try_advisory_lock(hashtext(${lockName(job)})) as locked`
    if (!row?.locked) {
      connection.release()
      return undefined
    }
  } catch (err) {
    connection.release()
    throw err
  }
  let lost = false
  const check = setInterval(() => {
    const timeout = new Promise<never>((_, reject) => {
      setTimeout(() => reject(new Error(`no answer within ${lockCheck.timeoutMs}ms`)), lockCheck.timeoutMs).unref()
    })
    Promise.race([connection`select 1`, timeout]).catch((err: Error) => {
      if (lost) return
      lost = true
      clearInterval(check)
      options.onLost?.(new Error(`the job's lock connection failed: ${err.message}`, { cause: err }))
    })
  }, lockCheck.everyMs)
  check.unref()
  return {
    connection,
    async release() {
      clearInterval(check)
      if (lost) return connection.release()
      try {
        await connection`select pg_advisory_unlock(hashtext(${lockName(job)}))`
      } finally {
        connection.release()
      }
    },
  }
}
