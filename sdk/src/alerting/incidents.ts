import type { Sql, TransactionSql } from 'postgres'
import type { Config } from '../config/config.ts'
import { createMasker } from '../config/redact.ts'
import type { Logger } from '../runtime/log.ts'
import { type Duration, formatMs, toMs } from '../text/duration.ts'
import { adminRoutes, enqueue, type Queries } from './outbox.ts'
import type { PolicyAction, PolicyState } from './policy.ts'
import type { AlertFields, Severity } from './templates.ts'

/** One alert. With a dedupeKey it opens (or continues) that incident: only its first alert is sent, plus reminders. */
export interface AlertInput {
  severity: Severity
  title: string
  text: string
  fields?: AlertFields
  dedupeKey?: string
  /** Remind while the incident stays open, this long after the last notice (default: never). */
  remindAfter?: Duration
  /** An open incident quiet for this long ends without a notice; the next alert opens a new one (default: never). */
  quietAfter?: Duration
  /** When the condition was seen (default: now). */
  at?: Date
  /** When a condition seen as a span (a burst) began: `quietAfter` counts the quiet up to it (default: `at`). */
  since?: Date
}

/** What became of an alert: queued for delivery (as an alert or a reminder), or suppressed as a duplicate. */
export interface AlertResult {
  queued: boolean
  kind: 'alert' | 'reminder' | 'recovery' | 'suppressed'
}

/** One observation of a check for the threshold policy (monitors): alert after N consecutive failures, remind, recover. */
export interface Check {
  key: string
  ok: boolean
  title: string
  /** Default critical. */
  severity?: Severity
  /** What is wrong, on a failure. */
  error?: string
  fields?: AlertFields
  /** Consecutive failures that raise the alert (default 2). */
  failuresToAlert?: number
  /** Reminder interval while it stays failing (default 1h; null: never). */
  remindEvery?: Duration | null
  /** The key of a dependency that is down: this check's alert waits for it (storm guard). */
  suppressedBy?: string
  /** See AlertInput.quietAfter. */
  quietAfter?: Duration
  at?: Date
  /** See AlertInput.since. */
  since?: Date
  /** The recovery notice's wording (default "Resolved: <title>", "Back to normal after <outage>"). */
  recovery?: { title?: string; text?: string }
}

/** What one observation led to (`pending`: failing below the threshold; `suppressed`: a dependency is down). */
export interface Decision {
  key: string
  action: PolicyAction
  state: PolicyState
  outageMs?: number
}

/** An incident as the status page and the CLI show it. */
export interface Incident {
  key: string
  job: string | null
  status: 'open' | 'resolved'
  severity: Severity
  title: string
  detail: string | null
  openedAt: Date | null
  lastFailureAt: Date | null
  resolvedAt: Date | null
  failures: number
  alertedAt: Date | null
  notifications: number
  suppressedBy: string | null
}

/** The incidents of one run: every alert, reminder and recovery is queued in the transaction that decides it. */
export interface Incidents {
  observe(check: Check, tx?: TransactionSql): Promise<Decision>
  alert(input: AlertInput, tx?: TransactionSql): Promise<AlertResult>
  /** Ends an open incident with one recovery notice (none when nobody was told it opened). */
  resolve(key: string, notice?: { title?: string; text?: string }, tx?: TransactionSql): Promise<AlertResult>
  get(key: string): Promise<Incident | undefined>
  /** The open incidents whose key starts with `prefix` (all open ones for ''), as openIncidents orders them. */
  open(prefix: string): Promise<Incident[]>
  /** Queues one notice the caller's own policy decided is due (the database's incident, kept in a file). */
  announce(
    kind: 'alert' | 'reminder' | 'recovery',
    input: Omit<AlertInput, 'dedupeKey'> & { key?: string },
  ): Promise<void>
  /** Forgets incidents under `prefix` whose key (after the prefix) is not in `keep`, silently: a target no longer watched. */
  retire(prefix: string, keep: readonly string[], tx?: TransactionSql): Promise<number>
}

/** Options of createIncidents; `sql` is the pool alerts are written with when no transaction is given. */
export interface IncidentOptions {
  sql: Sql
  config: Config
  log: Logger
  job?: string
  runId?: number
  runUrl?: string
  dryRun?: boolean
  now?: () => Date
}

interface Row {
  key: string
  job: string | null
  status: 'open' | 'resolved'
  severity: Severity
  title: string
  detail: string | null
  opened_at: Date | null
  last_failure_at: Date | null
  last_success_at: Date | null
  resolved_at: Date | null
  failures: number
  alerted_at: Date | null
  last_notified_at: Date | null
  notifications: number
  suppressed_by: string | null
}

const toState = (r: Row): PolicyState => ({
  failures: r.failures,
  firstFailureAt: r.opened_at,
  lastFailureAt: r.last_failure_at,
  lastSuccessAt: r.last_success_at,
  alertedAt: r.alerted_at,
  lastNotifiedAt: r.last_notified_at,
  notifications: r.notifications,
  suppressedBy: r.suppressed_by,
  lastError: r.detail,
})

const toIncident = (r: Row): Incident => ({
  key: r.key,
  job: r.job,
  status: r.status,
  severity: r.severity,
  title: r.title,
  detail: r.detail,
  openedAt: r.opened_at,
  lastFailureAt: r.last_failure_at,
  resolvedAt: r.resolved_at,
  failures: r.failures,
  alertedAt: r.alerted_at,
  notifications: r.notifications,
  suppressedBy: r.suppressed_by,
})

/** Creates the incident model for one run (or one tool). In a dry run it decides and logs, and writes nothing. */
export function createIncidents(options: IncidentOptions): Incidents {
  const { sql, config, log } = options
  const now = options.now ?? (() => new Date())
  // Alerts leave by mail and Slack, where no log masking applies: an error quoting a secret stays secret.
  const mask = createMasker(config.secrets)
  const inTx = <T>(tx: TransactionSql | undefined, fn: (t: TransactionSql) => Promise<T>): Promise<T> =>
    tx ? fn(tx) : (sql.begin(fn) as Promise<T>)

  const queueNotice = async (
    tx: Queries,
    kind: 'alert' | 'reminder' | 'recovery',
    check: { key?: string; severity: Severity; title: string; text: string; fields?: AlertFields; at: Date },
  ) => {
    // Templates load only when a notice is queued: a healthy run never renders one.
    const { renderIncidentNotice } = await import('./templates.ts')
    const rendered = renderIncidentNotice({
      kind,
      severity: check.severity,
      title: mask(check.title),
      text: mask(check.text),
      fields: check.fields
        ? Object.fromEntries(Object.entries(check.fields).map(([k, v]) => [k, typeof v === 'string' ? mask(v) : v]))
        : undefined,
      at: check.at,
      where: config.environment,
      job: options.job,
      runUrl: options.runUrl,
    })
    const routes = check.severity === 'info' ? [] : adminRoutes(config)
    if (routes.length === 0 && check.severity !== 'info')
      log.warn(`alert (no channel configured): ${rendered.subject}`, { text: check.text })
    await enqueue(
      tx,
      {
        kind,
        job: options.job,
        runId: options.runId,
        incidentKey: check.key || undefined,
        severity: check.severity,
        title: kind === 'reminder' ? `Still failing: ${mask(check.title)}` : mask(check.title),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        slack: rendered.slack,
      },
      routes,
      { from: config.alertEmailFrom },
    )
  }

  const observe = async (check: Check, tx?: TransactionSql): Promise<Decision> => {
    const at = check.at ?? now()
    // The policy loads only when a check is observed: a healthy run's recovery check stops before it.
    const { decide, defaultRule } = await import('./policy.ts')
    const rule = {
      failuresToAlert: check.failuresToAlert ?? defaultRule.failuresToAlert,
      remindEvery: check.remindEvery === undefined ? defaultRule.remindEvery : check.remindEvery,
    }
    const quietMs = check.quietAfter === undefined ? undefined : toMs(check.quietAfter)
    // A span that began within quietAfter of the last failure continues the incident, however long it has lasted.
    const since = check.since ?? at
    const step = (row: Row | undefined) => {
      let previous = row ? toState(row) : undefined
      // A burst that went quiet is over: the next failure is a new incident, not a continuation.
      if (
        previous?.lastFailureAt &&
        quietMs !== undefined &&
        since.getTime() - previous.lastFailureAt.getTime() > quietMs
      )
        previous = undefined
      return decide(check.key, previous, check, rule, at)
    }
    if (options.dryRun) {
      const [row] = await sql<Row[]>`select * from jobs.incidents where key = ${check.key}`
      const decision = step(row)
      if (['alert', 'reminder', 'recovery'].includes(decision.action))
        log.info(`dry run: would send ${decision.action}`, { key: check.key, title: check.title })
      return decision
    }
    return inTx(tx, async (t) => {
      const [row] = await t<Row[]>`select * from jobs.incidents where key = ${check.key} for update`
      // A healthy key that was healthy before needs no write (keeps every healthy run read-only).
      if (check.ok && (!row || row.failures === 0)) return step(row)
      if (!row) {
        await t`
          insert into jobs.incidents (key, job, severity, title) values (${check.key}, ${options.job ?? null},
            ${check.severity ?? 'critical'}, ${check.title})
          on conflict (key) do nothing`
      }
      const [locked] = row ? [row] : await t<Row[]>`select * from jobs.incidents where key = ${check.key} for update`
      const decision = step(locked)
      await save(t, check, decision.state, at, options.job, quietMs)
      await notify(t, check, decision, at)
      if (decision.action === 'pending' || decision.action === 'suppressed')
        log.info(`${check.key}: ${decision.action}`, {
          failures: decision.state.failures,
          suppressedBy: check.suppressedBy,
        })
      return decision
    })
  }

  const notify = async (tx: Queries, check: Check, decision: Decision, at: Date) => {
    const severity = check.severity ?? 'critical'
    if (decision.action === 'recovery') {
      const lasted = formatMs(decision.outageMs ?? 0)
      await queueNotice(tx, 'recovery', {
        key: check.key,
        severity,
        title: check.recovery?.title ?? `Resolved: ${check.title}`,
        text: check.recovery?.text ?? `Back to normal after ${lasted}.`,
        fields: { 'open for': lasted },
        at,
      })
    } else if (decision.action === 'alert' || decision.action === 'reminder') {
      const { state } = decision
      const failingFor = state.firstFailureAt ? formatMs(at.getTime() - state.firstFailureAt.getTime()) : undefined
      const { defaultRule } = await import('./policy.ts')
      const streak = (check.failuresToAlert ?? defaultRule.failuresToAlert) > 1
      await queueNotice(tx, decision.action, {
        key: check.key,
        severity,
        title: check.title,
        text: check.error ?? 'failing',
        fields: streak
          ? { ...check.fields, 'consecutive failures': state.failures, 'failing for': failingFor }
          : check.fields,
        at,
      })
    }
  }

  return {
    observe,
    async announce(kind, input) {
      if (options.dryRun) return log.info(`dry run: would send ${kind}`, { title: input.title })
      await queueNotice(sql, kind, { ...input, at: input.at ?? now() })
    },
    async alert(input, tx) {
      const at = input.at ?? now()
      if (input.severity === 'info') return recordInfo(input, at, tx)
      if (!input.dedupeKey) {
        if (options.dryRun) {
          log.info('dry run: would send alert', { title: input.title })
          return { queued: false, kind: 'alert' }
        }
        await inTx(tx, (t) => queueNotice(t, 'alert', { ...input, at }))
        return { queued: true, kind: 'alert' }
      }
      const decision = await observe(
        {
          key: input.dedupeKey,
          ok: false,
          title: input.title,
          severity: input.severity,
          error: input.text,
          fields: input.fields,
          failuresToAlert: 1,
          remindEvery: input.remindAfter ?? null,
          quietAfter: input.quietAfter,
          since: input.since,
          at,
        },
        tx,
      )
      if (decision.action === 'alert' || decision.action === 'reminder')
        return { queued: !options.dryRun, kind: decision.action }
      log.info('alert suppressed (incident already notified)', { dedupeKey: input.dedupeKey })
      return { queued: false, kind: 'suppressed' }
    },
    async resolve(key, notice, tx) {
      const [row] = await (tx ?? sql)<Row[]>`select * from jobs.incidents where key = ${key}`
      if (!row || row.status !== 'open') return { queued: false, kind: 'suppressed' }
      const decision = await observe({ key, ok: true, title: row.title, severity: row.severity, recovery: notice }, tx)
      return decision.action === 'recovery'
        ? { queued: !options.dryRun, kind: 'recovery' }
        : { queued: false, kind: 'suppressed' }
    },
    async get(key) {
      const [row] = await sql<Row[]>`select * from jobs.incidents where key = ${key}`
      return row ? toIncident(row) : undefined
    },
    open: (prefix) => openIncidents(sql, now(), prefix),
    async retire(prefix, keep, tx) {
      if (options.dryRun) return 0
      const run = (t: Queries) => t`
        delete from jobs.incidents
        where starts_with(key, ${prefix}) and substring(key from ${prefix.length + 1}::int) <> all(${[...keep]}::text[])`
      const result = await (tx ? run(tx) : run(sql))
      return result.count
    },
  }

  /** Info alerts reach people only through reports: recorded as a message with no route, once per dedupe key. */
  async function recordInfo(input: AlertInput, at: Date, tx?: TransactionSql): Promise<AlertResult> {
    if (options.dryRun) {
      log.info('dry run: would record info alert', { title: input.title })
      return { queued: false, kind: 'alert' }
    }
    return inTx(tx, async (t) => {
      if (input.dedupeKey) {
        const claimed = await t`
          insert into jobs.incidents (key, job, status, severity, title, detail, opened_at, resolved_at, occurrences)
          values (${input.dedupeKey}, ${options.job ?? null}, 'resolved', 'info', ${input.title}, ${input.text}, ${at}, ${at}, 1)
          on conflict (key) do nothing
          returning 1`
        if (!claimed.length) return { queued: false, kind: 'suppressed' as const }
      }
      await queueNotice(t, 'alert', { key: input.dedupeKey, ...input, at })
      return { queued: true, kind: 'alert' as const }
    })
  }
}

async function save(
  tx: TransactionSql,
  check: Check,
  state: PolicyState,
  at: Date,
  job: string | undefined,
  quietMs: number | undefined,
) {
  const failing = state.failures > 0
  const quietUntil =
    failing && quietMs !== undefined && state.lastFailureAt ? new Date(state.lastFailureAt.getTime() + quietMs) : null
  await tx`
    update jobs.incidents set
      status = ${failing ? 'open' : 'resolved'},
      job = coalesce(${job ?? null}, job),
      severity = ${failing ? (check.severity ?? 'critical') : tx`severity`},
      title = ${failing ? check.title : tx`title`},
      detail = ${state.lastError},
      fields = ${failing && check.fields ? tx.json(check.fields as never) : tx`fields`},
      opened_at = ${state.firstFailureAt},
      last_failure_at = ${state.lastFailureAt},
      last_success_at = ${state.lastSuccessAt},
      resolved_at = ${failing ? null : tx`case when status = 'open' then ${at}::timestamptz else resolved_at end`},
      failures = ${state.failures},
      occurrences = occurrences + ${failing ? 1 : 0},
      alerted_at = ${state.alertedAt},
      last_notified_at = ${state.lastNotifiedAt},
      notifications = ${state.notifications},
      suppressed_by = ${state.suppressedBy},
      quiet_until = ${quietUntil},
      updated_at = now()
    where key = ${check.key}`
}

/**
 * Open incidents, most severe and oldest first (alerted or failing below the threshold), for status pages. One that
 * ends by going quiet (a security burst) is left out once its quiet period has passed. Only those whose key starts
 * with `prefix` when given (default: all).
 */
export async function openIncidents(sql: Sql, now = new Date(), prefix = ''): Promise<Incident[]> {
  const rows = await sql<Row[]>`
    select * from jobs.incidents
    where status = 'open' and (quiet_until is null or quiet_until > ${now}) and starts_with(key, ${prefix})
    order by case severity when 'critical' then 0 when 'warning' then 1 else 2 end, opened_at nulls last, key`
  return rows.map(toIncident)
}
