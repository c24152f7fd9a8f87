import fs from 'node:fs'
import path from 'node:path'
import { root } from './run.ts'

/** The project's reference page, relative to the repository root. */
export const referencePath = 'docs/reference.md'

/** A default schedule as the reference words it, in a form checkable against a workflow's crons. */
export type DocumentedSchedule =
  | { every: number } // minutes between runs
  | { daily: true; hour?: number }
  | { weekly: number; hour: number } // day of week, 0 = Sunday
  | { monthly: number } // day of month

/** One row of the reference's jobs table. */
export interface DocumentedJob {
  id: string
  script: string
  workflow: string
  /** The "default schedule" cell as written. */
  words: string
  schedule: DocumentedSchedule
  critical: boolean
  timeout: string
}

const weekdays = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']

/**
 * Reads a default schedule in the words the reference uses: `every 15 minutes`, `every 6 hours`, `daily`,
 * `daily 03:00`, `Sundays 02:00`, `monthly, 1st`, `1st of month`. Anything else throws, so a row the checks cannot
 * read fails instead of passing unchecked.
 */
export function parseScheduleWords(words: string): DocumentedSchedule {
  const text = words.trim()
  const every = /^every (\d+) (minute|hour)s?$/.exec(text)
  if (every) return { every: Number(every[1]) * (every[2] === 'hour' ? 60 : 1) }
  const daily = /^daily(?: (\d{2}):\d{2})?$/.exec(text)
  if (daily) return daily[1] === undefined ? { daily: true } : { daily: true, hour: Number(daily[1]) }
  const weekly = /^([A-Z][a-z]+day)s (\d{2}):\d{2}$/.exec(text)
  if (weekly && weekdays.includes(weekly[1]!)) return { weekly: weekdays.indexOf(weekly[1]!), hour: Number(weekly[2]) }
  const monthly = /^monthly, (\d{1,2})(?:st|nd|rd|th)$/.exec(text) ?? /^(\d{1,2})(?:st|nd|rd|th) of month$/.exec(text)
  if (monthly) return { monthly: Number(monthly[1]) }
  throw new Error(`cannot read the schedule "${words}"`)
}

const cellsOf = (line: string) =>
  line
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim())

/** The rows of the jobs table (the table with a "job id" column) in `markdown`, by job id. */
export function readJobsTable(markdown: string, source = referencePath): Map<string, DocumentedJob> {
  const lines = markdown.split('\n')
  const start = lines.findIndex((l) => l.startsWith('|') && cellsOf(l).includes('job id'))
  if (start < 0) throw new Error(`${source} has no jobs table (a table with a "job id" column)`)
  const head = cellsOf(lines[start]!)
  const column = (name: string) => {
    const i = head.indexOf(name)
    if (i < 0) throw new Error(`${source}: the jobs table has no "${name}" column`)
    return i
  }
  const at = {
    id: column('job id'),
    script: column('script'),
    workflow: column('workflow'),
    schedule: column('default schedule'),
    critical: column('critical'),
    timeout: column('timeout'),
  }
  const jobs = new Map<string, DocumentedJob>()
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break
    const cells = cellsOf(line)
    const id = cells[at.id]!
    const critical = cells[at.critical]
    if (critical !== 'yes' && critical !== 'no')
      throw new Error(`${source}: ${id} has critical "${critical}" (expected yes or no)`)
    let schedule: DocumentedSchedule
    try {
      schedule = parseScheduleWords(cells[at.schedule]!)
    } catch (err) {
      throw new Error(`${source}: ${id}: ${(err as Error).message}`, { cause: err })
    }
    jobs.set(id, {
      id,
      script: cells[at.script]!,
      workflow: cells[at.workflow]!,
      words: cells[at.schedule]!,
      schedule,
      critical: critical === 'yes',
      timeout: cells[at.timeout]!,
    })
  }
  return jobs
}

/** The jobs table of docs/reference.md. */
export function documentedJobs(): Map<string, DocumentedJob> {
  return readJobsTable(fs.readFileSync(path.join(root, referencePath), 'utf8'))
}
