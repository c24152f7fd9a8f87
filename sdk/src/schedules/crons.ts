import { Cron } from 'croner'

/** One `on.schedule` entry of a workflow: a 5-field cron and its own timezone (UTC when absent). */
export interface CronEntry {
  cron: string
  timezone?: string
}

/**
 * The `on.schedule` entries of a workflow, read from its text without a YAML parser: a job reads its own schedule at
 * every start, and a YAML parser costs more than the rest of the start-up. It understands the block style the
 * project's workflows use (`- cron: "…"` items, each optionally with `timezone:`); the workflow tests hold it to
 * the full YAML reading of every shipped workflow.
 */
export function readCronEntries(workflowText: string): CronEntry[] {
  const lines = workflowText.split(/\r?\n/)
  const entries: CronEntry[] = []
  let inOn = false
  let scheduleIndent: number | undefined
  for (const raw of lines) {
    const line = raw.replace(/\s+#.*$/, '')
    if (!line.trim()) continue
    const indent = line.length - line.trimStart().length
    if (indent === 0) {
      inOn = /^(on|"on"|'on'):\s*$/.test(line)
      scheduleIndent = undefined
      continue
    }
    if (!inOn) continue
    if (scheduleIndent === undefined) {
      if (/^\s+schedule:\s*$/.test(line)) scheduleIndent = indent
      continue
    }
    if (indent <= scheduleIndent) {
      scheduleIndent = /^\s+schedule:\s*$/.test(line) ? indent : undefined
      continue
    }
    const item = /^\s*-\s+(cron|timezone):\s*(.+)$/.exec(line)
    const field = item ?? /^\s+(cron|timezone):\s*(.+)$/.exec(line)
    if (!field) continue
    const value = unquote(field[2]!.trim())
    if (item) entries.push(field[1] === 'cron' ? { cron: value } : { cron: '', timezone: value })
    else if (entries.length) entries[entries.length - 1]![field[1] as 'cron' | 'timezone'] = value
  }
  return entries.filter((e) => e.cron)
}

function unquote(value: string): string {
  return /^(["']).*\1$/.test(value) ? value.slice(1, -1) : value
}

/** The latest time any entry fired at or before `at` (each entry in its own timezone). */
export function latestFireAt(entries: readonly CronEntry[], at: Date): Date | undefined {
  const before = new Date(at.getTime() + 1)
  const times = entries
    .map((e) => new Cron(e.cron, { timezone: e.timezone, paused: true, mode: '5-part' }).previousRuns(1, before)[0])
    .filter((d): d is Date => d !== undefined)
  return times.length ? new Date(Math.max(...times.map((d) => d.getTime()))) : undefined
}
