import type { Sql } from 'postgres'
import type { LogEntry } from '../runtime/log.ts'

/** How much of a run's log history keeps: 2,000 lines of at most 4,000 characters each. */
export const runLogLimits = Object.freeze({ lines: 2_000, lineChars: 4_000 })

/** A run's log lines, collected as they are written and saved to `jobs.run_logs` in batches. */
export interface RunLog {
  add(entry: LogEntry): void
  /** Saves the lines not saved yet (once the run has its row); a failure keeps them for the next flush. */
  flush(sql: Sql, runId: number): Promise<void>
}

/** Creates a run log; past `limits.lines` it keeps a line saying how many were left out instead of them. */
export function createRunLog(limits = runLogLimits): RunLog {
  const pending: LogEntry[] = []
  let kept = 0
  let dropped = 0
  let noted = 0
  let seq = 0
  let saving: Promise<void> = Promise.resolve()
  return {
    add(entry) {
      if (kept < limits.lines) {
        kept++
        pending.push({ ...entry, text: entry.text.slice(0, limits.lineChars) })
      } else dropped++
    },
    flush(sql, runId) {
      saving = saving.then(async () => {
        const batch = pending.splice(0)
        if (dropped > noted) {
          batch.push({
            at: new Date(),
            level: 'warn',
            text: `… log cut: ${dropped - noted} more line(s) not kept (the limit is ${limits.lines} a run)`,
          })
          noted = dropped
        }
        if (batch.length === 0) return
        const rows = batch.map((e) => ({ run_id: runId, seq: ++seq, at: e.at, level: e.level, line: e.text }))
        try {
          await sql`insert into jobs.run_logs ${sql(rows)} on conflict do nothing`
        } catch (err) {
          pending.unshift(...batch)
          seq -= batch.length
          throw err
        }
      })
      return saving
    },
  }
}

/** The saved log of one run, in order. */
export async function readRunLog(sql: Sql, runId: number): Promise<LogEntry[]> {
  const rows = await sql<{ at: Date; level: LogEntry['level']; line: string }[]>`
    select at, level, line from jobs.run_logs where run_id = ${runId} order by seq`
  return rows.map((r) => ({ at: r.at, level: r.level, text: r.line }))
}
