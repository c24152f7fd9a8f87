import type { Sql } from 'postgres'
import type { Finding } from './rules.ts'

/**
 * Whether a windowed finding continues an incident already recorded for its rule and subject (bursts overlapping
 * or closer than one window): then it extends that incident instead of alerting again.
 */
export async function continuesIncident(sql: Sql, finding: Finding, windowMs: number): Promise<boolean> {
  if (!finding.window) return false
  const rows = await sql`
    select 1 from jobs.security_incidents
    where rule = ${finding.rule} and subject = ${finding.subject}
      and last_at >= ${new Date(finding.window.start.getTime() - windowMs)}
      and started_at <= ${new Date(finding.window.end.getTime() + windowMs)}
    limit 1`
  return rows.length > 0
}

/** Records (or extends) the incident of a windowed finding after its alert went out. */
export async function recordIncident(sql: Sql, finding: Finding, windowMs: number): Promise<void> {
  if (!finding.window) return
  const { start, end, events } = finding.window
  const [extended] = await sql`
    update jobs.security_incidents
    set last_at = greatest(last_at, ${end}), started_at = least(started_at, ${start}), events = greatest(events, ${events})
    where (rule, subject, started_at) = (
      select rule, subject, started_at from jobs.security_incidents
      where rule = ${finding.rule} and subject = ${finding.subject}
        and last_at >= ${new Date(start.getTime() - windowMs)} and started_at <= ${new Date(end.getTime() + windowMs)}
      order by started_at desc limit 1)
    returning 1`
  if (extended) return
  await sql`
    insert into jobs.security_incidents (rule, subject, started_at, last_at, events)
    values (${finding.rule}, ${finding.subject}, ${start}, ${end}, ${events})
    on conflict (rule, subject, started_at) do update
      set last_at = greatest(jobs.security_incidents.last_at, excluded.last_at),
          events = greatest(jobs.security_incidents.events, excluded.events)`
}

/**
 * Records an info finding for the daily report only (jobs.alerts, no channel) once per dedupe key: the key is
 * claimed in jobs.alert_state (as an already-resolved incident) in the same transaction. True when recorded now.
 */
export async function recordInfo(sql: Sql, job: string, finding: Finding): Promise<boolean> {
  return sql.begin(async (tx) => {
    const claimed = await tx`
      insert into jobs.alert_state (dedupe_key, status, severity, title, resolved_at, sends)
      values (${finding.dedupeKey}, 'resolved', 'info', ${finding.title}, now(), 0)
      on conflict (dedupe_key) do nothing
      returning 1`
    if (!claimed.length) return false
    await tx`
      insert into jobs.alerts (job, dedupe_key, kind, severity, title, text, channels, delivered)
      values (${job}, ${finding.dedupeKey}, 'alert', 'info', ${finding.title}, ${finding.text}, '{}', '{}')`
    return true
  }) as Promise<boolean>
}
