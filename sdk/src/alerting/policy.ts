import type { Logger } from '../runtime/log.ts'
import { type Duration, formatMs, toMs } from '../text/duration.ts'
import type { AlertFields, Severity } from './templates.ts'

/** When a failing check becomes an incident; defaults: alert on the 2nd consecutive failure, remind every hour. */
export interface PolicyRule {
  failuresToAlert?: number
  /** null: never remind. */
  remindEvery?: Duration | null
}

/** Defaults of PolicyRule. */
export const defaultRule = Object.freeze({ failuresToAlert: 2, remindEvery: '1h' }) satisfies Required<PolicyRule>

/** The durable state of one policy key: the current failure streak and what was sent about it. */
export interface PolicyState {
  failures: number
  firstFailureAt: Date | null
  lastFailureAt: Date | null
  lastSuccessAt: Date | null
  /** When the incident's alert went out; null while the streak is below the threshold or suppressed. */
  alertedAt: Date | null
  lastNotifiedAt: Date | null
  notifications: number
  /** The dependency whose outage suppressed this key's alert (storm guard). */
  suppressedBy: string | null
  lastError: string | null
}

/** What one observation led to. `pending`: failing, below the threshold; `suppressed`: due, but a dependency is down. */
export type PolicyAction = 'none' | 'pending' | 'alert' | 'reminder' | 'recovery' | 'suppressed'

/** The outcome of one observation: the action, the new state and, for a recovery, how long the outage lasted. */
export interface PolicyDecision {
  key: string
  action: PolicyAction
  state: PolicyState
  outageMs?: number
}

/** One observation of a check: `ok`, or a failure with its error; `suppressedBy` names a dependency that is down. */
export interface Observation {
  ok: boolean
  error?: string
  suppressedBy?: string
}

/** The state of a key that never failed. */
export function emptyState(): PolicyState {
  return {
    failures: 0,
    firstFailureAt: null,
    lastFailureAt: null,
    lastSuccessAt: null,
    alertedAt: null,
    lastNotifiedAt: null,
    notifications: 0,
    suppressedBy: null,
    lastError: null,
  }
}

/** True when the key is in a failure streak (alerted, pending or suppressed). */
export function isFailing(state: PolicyState | undefined): boolean {
  return !!state && state.failures > 0
}

/**
 * The policy as a pure step: previous state + observation at `now` → action and next state. No alert on failures below
 * the threshold, one alert when it is reached, a reminder once `remindEvery` passed since the last notice, one recovery
 * (with the outage's length, first failure → first success) only when an alert went out.
 */
export function decide(
  key: string,
  previous: PolicyState | undefined,
  observation: Observation,
  rule: PolicyRule,
  now: Date,
): PolicyDecision {
  const prev = previous ?? emptyState()
  if (observation.ok) {
    const state = { ...emptyState(), lastSuccessAt: now }
    if (!prev.alertedAt) return { key, action: 'none', state }
    const outageMs = now.getTime() - (prev.firstFailureAt ?? prev.alertedAt).getTime()
    return { key, action: 'recovery', state, outageMs }
  }
  const threshold = Math.max(1, rule.failuresToAlert ?? defaultRule.failuresToAlert)
  const remindMs =
    rule.remindEvery === null ? Number.POSITIVE_INFINITY : toMs(rule.remindEvery ?? defaultRule.remindEvery)
  const state: PolicyState = {
    ...prev,
    failures: prev.failures + 1,
    firstFailureAt: prev.firstFailureAt ?? now,
    // A failure seen late (a burst found in rows committed late) never moves the last failure back.
    lastFailureAt: prev.lastFailureAt && prev.lastFailureAt > now ? prev.lastFailureAt : now,
    lastError: observation.error ?? null,
    suppressedBy: observation.suppressedBy ?? null,
  }
  if (observation.suppressedBy && state.failures >= threshold) return { key, action: 'suppressed', state }
  if (prev.alertedAt) {
    const since = now.getTime() - (prev.lastNotifiedAt ?? prev.alertedAt).getTime()
    if (since < remindMs) return { key, action: 'none', state }
    return {
      key,
      action: 'reminder',
      state: { ...state, lastNotifiedAt: now, notifications: prev.notifications + 1 },
    }
  }
  if (state.failures < threshold) return { key, action: 'pending', state }
  return { key, action: 'alert', state: { ...state, alertedAt: now, lastNotifiedAt: now, notifications: 1 } }
}

/** Where policy state lives: the `jobs` schema (sql store) or, for the database itself, a file (file store). */
export interface PolicyStore {
  get(key: string): Promise<PolicyState | undefined>
  /** Runs `step` on the key's state under a per-key lock and writes what it returns; concurrent updates serialise. */
  update(key: string, step: (previous: PolicyState | undefined) => PolicyState): Promise<void>
}

/** One check handed to the policy: the observation plus how to word its notices. */
export interface PolicyCheck extends Observation, PolicyRule {
  key: string
  title: string
  severity?: Severity
  /** Extra context on alerts and reminders. */
  fields?: AlertFields
}

/** Delivers one notice (the file-backed database-outage sender: the database cannot queue its own outage). */
export type PolicySender = (kind: 'alert' | 'reminder' | 'recovery', notice: PolicyNotice) => Promise<unknown>

/** A notice the policy asks its sender to deliver. */
export interface PolicyNotice {
  severity: Severity
  title: string
  text: string
  fields?: AlertFields
  dedupeKey?: string
}

/** Options of createAlertPolicy; `rule` gives the defaults of every check; `dryRun` decides and logs but writes and sends nothing. */
export interface AlertPolicyOptions {
  store: PolicyStore
  send: PolicySender
  log: Logger
  rule?: PolicyRule
  dryRun?: boolean
}

/** The alert policy engine every monitor shares: dedupe by key, threshold, reminders, recovery, storm guard. */
export interface AlertPolicy {
  observe(check: PolicyCheck, now: Date): Promise<PolicyDecision>
}

/** Creates the engine over a store and a sender. */
export function createAlertPolicy(options: AlertPolicyOptions): AlertPolicy {
  const { store, send, log } = options
  return {
    async observe(check, now) {
      const rule = { ...defaultRule, ...options.rule, ...definedRule(check) }
      const before = await store.get(check.key)
      // A healthy key that was healthy before needs no write (keeps every successful run read-only).
      if (check.ok && !isFailing(before)) return { key: check.key, action: 'none', state: before ?? emptyState() }
      let decision: PolicyDecision
      if (options.dryRun) {
        decision = decide(check.key, before, check, rule, now)
      } else {
        let made: PolicyDecision | undefined
        await store.update(check.key, (previous) => {
          made = decide(check.key, previous, check, rule, now)
          return made.state
        })
        decision = made!
      }
      const { action, state } = decision
      if (action === 'none' || action === 'pending' || action === 'suppressed') {
        if (action !== 'none')
          log.info(`${check.key}: ${action}`, {
            failures: state.failures,
            threshold: rule.failuresToAlert,
            suppressedBy: check.suppressedBy,
          })
        return decision
      }
      if (options.dryRun) {
        log.info(`dry run: would send ${action}`, { key: check.key, title: check.title })
        return decision
      }
      const severity = check.severity ?? 'critical'
      const failingFor = state.firstFailureAt ? formatMs(now.getTime() - state.firstFailureAt.getTime()) : undefined
      if (action === 'recovery') {
        const lasted = formatMs(decision.outageMs ?? 0)
        await send('recovery', {
          severity,
          title: `Resolved: ${check.title}`,
          text: `Back to normal after ${lasted}.`,
          fields: { outage: lasted, key: check.key },
          dedupeKey: check.key,
        })
      } else {
        const result = await send(action, {
          severity,
          title: check.title,
          text: check.error ?? 'failing',
          fields: { ...check.fields, 'consecutive failures': state.failures, 'failing for': failingFor },
          dedupeKey: check.key,
        })
        if (reachedNobody(result)) {
          // Every channel failed: nobody was told, so the alert (or reminder) is still due on the next run.
          log.warn(`${check.key}: ${action} reached no channel; the next run sends it again`)
          await store.update(check.key, (current) => {
            const base = current ?? state
            return action === 'alert'
              ? { ...base, alertedAt: null, lastNotifiedAt: null, notifications: 0 }
              : {
                  ...base,
                  lastNotifiedAt: before?.lastNotifiedAt ?? before?.alertedAt ?? null,
                  notifications: Math.max(0, base.notifications - 1),
                }
          })
        }
      }
      return decision
    },
  }
}

/** A delivery result (as the alerter returns) in which channels were tried and every one failed. */
function reachedNobody(result: unknown): boolean {
  const r = result as { delivered?: unknown[]; failed?: unknown[] } | undefined
  return Array.isArray(r?.failed) && r.failed.length > 0 && Array.isArray(r.delivered) && r.delivered.length === 0
}

function definedRule(check: PolicyRule): PolicyRule {
  const rule: PolicyRule = {}
  if (check.failuresToAlert !== undefined) rule.failuresToAlert = check.failuresToAlert
  if (check.remindEvery !== undefined) rule.remindEvery = check.remindEvery
  return rule
}
