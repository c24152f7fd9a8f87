import type { Sql } from 'postgres'
import { ConfigError } from '../runtime/errors.ts'
import { parseDuration } from '../text/duration.ts'

/** One maintenance pause (`target` is a job id or `all`). */
export interface Pause {
  id: number
  target: string
  reason: string
  until: Date
  createdAt: Date
  createdBy: string | null
}

interface PauseRow {
  id: string
  target: string
  reason: string
  paused_until: Date
  created_at: Date
  created_by: string | null
}

const toPause = (r: PauseRow): Pause => ({
  id: Number(r.id),
  target: r.target,
  reason: r.reason,
  until: r.paused_until,
  createdAt: r.created_at,
  createdBy: r.created_by,
})

/**
 * Parses `--until`: an ISO time (`2026-11-28T18:00Z`, `2026-11-28 18:00` read as UTC) or a span from `now`
 * (`90m`, `2h`, `1d`; `30s` for tests). Throws ConfigError when it is neither or not in the future.
 */
export function parseUntil(text: string, now = new Date()): Date {
  const span = parseDuration(text)
  let at: Date
  if (span !== undefined) {
    at = new Date(now.getTime() + span)
  } else {
    const iso = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text.trim())
      ? `${text.trim().replace(' ', 'T')}Z`
      : text.trim()
    at = /^\d{4}-\d{2}-\d{2}/.test(iso) ? new Date(iso) : new Date(Number.NaN)
  }
  if (Number.isNaN(at.getTime()))
    throw new ConfigError(`--until must be a time (2026-11-28T18:00Z) or a span (90m, 2h, 1d); got "${text}"`)
  if (at.getTime() <= now.getTime()) throw new ConfigError(`--until must be in the future (got ${at.toISOString()})`)
  return at
}

/** Pauses `target` (a job id or `all`) until `until`; a new pause of the same target replaces the active one. */
export async function pauseJobs(
  sql: Sql,
  input: { target: string; until: Date; reason: string; by?: string },
): Promise<Pause> {
  return sql.begin(async (tx) => {
    await tx`update jobs.pauses set resumed_at = now() where target = ${input.target} and resumed_at is null`
    const [row] = await tx<PauseRow[]>`
      insert into jobs.pauses (target, reason, paused_until, created_by)
      values (${input.target}, ${input.reason}, ${input.until}, ${input.by ?? null})
      returning id, target, reason, paused_until, created_at, created_by`
    return toPause(row!)
  })
}

/** Ends active pauses: of `target` only, or every pause when `target` is undefined. Returns the pauses ended. */
export async function resumeJobs(sql: Sql, target?: string): Promise<Pause[]> {
  const rows = await sql<PauseRow[]>`
    update jobs.pauses set resumed_at = now()
    where resumed_at is null and paused_until > now() ${target ? sql`and target = ${target}` : sql``}
    returning id, target, reason, paused_until, created_at, created_by`
  return rows.map(toPause)
}

/** Pauses in force at the database's now(), soonest end first. */
export async function activePauses(sql: Sql): Promise<Pause[]> {
  const rows = await sql<PauseRow[]>`
    select id, target, reason, paused_until, created_at, created_by from jobs.pauses
    where resumed_at is null and paused_until > now()
    order by paused_until, id`
  return rows.map(toPause)
}

/**
 * The pause that holds `job`, if any: a pause naming it wins over one of `all`, which a job exempt from pause-all
 * (its definition's `exemptFromPauseAll`) ignores.
 */
export function pauseFor(job: string, pauses: readonly Pause[], exempt = false): Pause | undefined {
  return pauses.find((p) => p.target === job) ?? (exempt ? undefined : pauses.find((p) => p.target === 'all'))
}

/** The active pause holding `job` right now, read from the database. */
export async function findPause(sql: Sql, job: string, exempt = false): Promise<Pause | undefined> {
  return pauseFor(job, await activePauses(sql), exempt)
}

/** When each target's most recent pause ended (by resume or expiry), for targets with an ended pause. */
export async function pauseEnds(sql: Sql): Promise<Map<string, Date>> {
  const rows = await sql<{ target: string; ended: Date }[]>`
    select target, max(least(coalesce(resumed_at, paused_until), paused_until)) as ended from jobs.pauses
    where least(coalesce(resumed_at, paused_until), paused_until) <= now()
    group by target`
  return new Map(rows.map((r) => [r.target, r.ended]))
}

/** When the last pause that held `job` ended, from `pauseEnds` (a pause of `all` counts unless the job is exempt). */
export function lastPauseEnd(job: string, ends: ReadonlyMap<string, Date>, exempt = false): Date | undefined {
  const times = [ends.get(job), exempt ? undefined : ends.get('all')]
    .filter((d): d is Date => d !== undefined)
    .map((d) => d.getTime())
  return times.length ? new Date(Math.max(...times)) : undefined
}

/** The reason line recorded on a paused run. */
export function pauseNote(pause: Pause): string {
  return `paused${pause.target === 'all' ? ' (all jobs)' : ''} until ${pause.until.toISOString()}: ${pause.reason}`
}
