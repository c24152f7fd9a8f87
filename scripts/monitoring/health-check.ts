import { type DatabaseInfo, type Decision, defineJob, firstLine, formatMs, toError } from '@admin-jobs/sdk'
import type { Sql } from 'postgres'
import { type ProbeResult, probeAll } from './lib/index.ts'

const dayMs = 86_400_000

export default defineJob({
  description:
    'Probe the database and every HEALTHCHECK_URLS target; alert on outages, recoveries and expiring certificates',
  critical: true,
  timeout: '4m',
  // A rerun would count every failure twice; a failed probe is a result, not an error.
  retry: false,
  settings: (read) => ({
    timeoutMs: read.duration('HEALTHCHECK_TIMEOUT', '10s'),
    failuresToAlert: read.integer('HEALTHCHECK_FAILURES', 2, { min: 1, max: 100 }),
    remindEvery: read.duration('HEALTHCHECK_REMIND', '1h'),
    certWarnDays: read.integer('HEALTHCHECK_CERT_WARN_DAYS', 14, { min: 0, max: 365 }),
    retentionDays: read.integer('MONITORING_RETENTION_DAYS', 30, { min: 1, max: 3650 }),
  }),
  async run({ sql, database: db, log, config, settings, dryRun, signal, summary, now: clock, run, ...ctx }) {
    const now = clock()
    const rule = { failuresToAlert: settings.failuresToAlert, remindEvery: settings.remindEvery }

    // Every target at once: the database's round trip and all URLs, each bounded by the same timeout.
    const [database, probes] = await Promise.all([
      checkDatabase(db, settings.timeoutMs),
      probeAll(config.healthcheckUrls, { timeoutMs: settings.timeoutMs, signal, now }),
    ])
    // A run stopped mid-probe (timeout, SIGINT/SIGTERM, an Actions cancel) saw nothing about the targets: recording its
    // aborted probes as failures would page people for an outage that never happened.
    signal.throwIfAborted()

    // The database target's incident is the shared one every job feeds when it cannot connect (storm guard).
    const dbDecision = await ctx.observeDatabase({ ok: database.ok, error: database.error })
    // While the database is down, targets that fail with it are recorded but raise no incident of their own.
    const suppressedBy = database.ok ? undefined : databaseTarget

    const decisions: Decision[] = [dbDecision]
    const certNotes = new Map<string, string>()
    for (const probe of probes) {
      decisions.push(
        await ctx.observe({
          ...rule,
          key: `health:${probe.target}`,
          ok: probe.ok,
          error: probe.error,
          suppressedBy,
          title: `${probe.target} is down`,
          fields: { target: probe.target, status: probe.status, latency: formatMs(probe.latencyMs) },
          at: now,
        }),
      )
      if (probe.certDaysLeft !== undefined) {
        const days = Math.floor(probe.certDaysLeft)
        const cert = await ctx.observe({
          key: `cert:${probe.target}`,
          ok: probe.certDaysLeft > settings.certWarnDays,
          error: `The certificate of ${probe.target} expires on ${probe.certExpiresAt?.toISOString()} (${days} days left).`,
          title: `Certificate of ${probe.target} expires in ${days} days`,
          severity: 'warning',
          // One warning a day until it is renewed.
          failuresToAlert: 1,
          remindEvery: '24h',
          at: now,
        })
        decisions.push(cert)
        certNotes.set(probe.target, cert.action)
      }
    }

    if (!dryRun) {
      await record(sql, { now, database, probes, runId: run.id, retentionDays: settings.retentionDays })
      // A target removed from HEALTHCHECK_URLS leaves no open incident behind.
      const targets = probes.map((p) => p.target)
      await ctx.incidents.retire('health:', targets)
      await ctx.incidents.retire('cert:', targets)
    }

    const actionOf = (key: string) => decisions.find((d) => d.key === key)?.action ?? 'none'
    summary.table([
      ['Target', 'Status', 'Latency', 'HTTP', 'Certificate', 'Alert'],
      [
        'database',
        database.ok ? '✅ up' : `❌ ${database.error}`,
        formatMs(database.latencyMs),
        '',
        '',
        actionOf(databaseTarget),
      ],
      ...probes.map((p) => [
        p.target,
        p.ok ? '✅ up' : `❌ ${p.error}`,
        formatMs(p.latencyMs),
        p.status ?? '',
        p.certDaysLeft === undefined
          ? ''
          : `${p.certDaysLeft <= settings.certWarnDays ? '⚠️ ' : ''}${Math.floor(p.certDaysLeft)} days`,
        [actionOf(`health:${p.target}`), certNotes.get(p.target)].filter((a) => a && a !== 'none').join(', ') || 'none',
      ]),
    ])

    const count = (action: string) => decisions.filter((d) => d.action === action).length
    const down = probes.filter((p) => !p.ok).length + (database.ok ? 0 : 1)
    if (down > 0) log.warn(`${down} of ${probes.length + 1} targets down`)
    return {
      targets: probes.length + 1,
      up: probes.length + 1 - down,
      down,
      alerts: count('alert'),
      reminders: count('reminder'),
      recoveries: count('recovery'),
      suppressed: count('suppressed'),
      slowestMs: Math.max(database.latencyMs, ...probes.map((p) => p.latencyMs)),
    }
  },
})

interface DatabaseCheck {
  ok: boolean
  latencyMs: number
  error?: string
}

/** The database's own target: its key is the one incident every job that cannot connect also feeds. */
const databaseTarget = 'database'

/** Connect + `select 1` on a fresh connection (the pool's may be warm), bounded by the timeout. */
async function checkDatabase(db: DatabaseInfo, timeoutMs: number): Promise<DatabaseCheck> {
  const started = performance.now()
  const elapsed = () => Math.round((performance.now() - started) * 10) / 10
  // The same server, database and credentials as the job's pool, but one new connection.
  const fresh = db.connect({ connectTimeoutMs: timeoutMs, applicationName: 'admin-jobs:health-check:probe' })
  let timer: NodeJS.Timeout | undefined
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer to select 1 within ${timeoutMs}ms`)), timeoutMs)
    })
    await Promise.race([fresh`select 1 as one`, timeout])
    return { ok: true, latencyMs: elapsed() }
  } catch (err) {
    return { ok: false, latencyMs: elapsed(), error: firstLine(toError(err)) }
  } finally {
    clearTimeout(timer)
    await fresh.end({ timeout: 0 }).catch(() => {})
  }
}

async function record(
  sql: Sql,
  options: { now: Date; database: DatabaseCheck; probes: ProbeResult[]; runId: number; retentionDays: number },
) {
  const { now, database, probes, runId } = options
  const rows = [
    {
      target: databaseTarget,
      kind: 'database',
      up: database.ok,
      latency_ms: database.latencyMs,
      status_code: null as number | null,
      error: database.error ?? null,
      cert_days_left: null as number | null,
      cert_expires_at: null as Date | null,
    },
    ...probes.map((p) => ({
      target: p.target,
      kind: 'http',
      up: p.ok,
      latency_ms: p.latencyMs,
      status_code: p.status ?? null,
      error: p.error ?? null,
      cert_days_left: p.certDaysLeft ?? null,
      cert_expires_at: p.certExpiresAt ?? null,
    })),
  ]
  const targets = rows.map((r) => r.target)
  await sql.begin(async (tx) => {
    for (const r of rows) {
      await tx`
        insert into jobs.health_samples (checked_at, target, kind, up, latency_ms, status_code, error, cert_days_left, run_id)
        values (${now}, ${r.target}, ${r.kind}, ${r.up}, ${r.latency_ms}, ${r.status_code}, ${r.error}, ${r.cert_days_left}, ${runId})`
      await tx`
        insert into jobs.health_targets as t (target, kind, up, checked_at, last_up_at, latency_ms, status_code, error, cert_expires_at)
        values (${r.target}, ${r.kind}, ${r.up}, ${now}, ${r.up ? now : null}, ${r.latency_ms}, ${r.status_code}, ${r.error}, ${r.cert_expires_at})
        on conflict (target) do update set
          kind = excluded.kind, up = excluded.up, checked_at = excluded.checked_at,
          last_up_at = coalesce(excluded.last_up_at, t.last_up_at), latency_ms = excluded.latency_ms,
          status_code = excluded.status_code, error = excluded.error, cert_expires_at = excluded.cert_expires_at`
    }
    // A target removed from HEALTHCHECK_URLS leaves no stale state behind.
    await tx`delete from jobs.health_targets where target <> all(${targets})`
    await tx`delete from jobs.health_samples where checked_at < ${new Date(now.getTime() - options.retentionDays * dayMs)}`
  })
}
