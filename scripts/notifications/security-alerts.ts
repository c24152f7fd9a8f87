import { type AlertInput, defineJob } from '@admin-jobs/sdk'
import { evaluateRules, type Finding } from './lib/rules.ts'
import { scanAuditLogs, type Watermark } from './lib/watermark.ts'

const day = 24 * 60 * 60 * 1000

export default defineJob({
  description: 'Evaluate new audit_logs rows against the security rules and alert once per incident',
  critical: true,
  exemptFromPauseAll: 'attacks do not wait for maintenance to end',
  headline: ['findings', 'alerted', 'events'],
  timeout: '10m',
  settings: (read) => ({
    failedPerIp: read.integer('SECURITY_FAILED_LOGINS_PER_IP', 10, { min: 1 }),
    failedPerAccount: read.integer('SECURITY_FAILED_LOGINS_PER_ACCOUNT', 5, { min: 1 }),
    windowMs: read.duration('SECURITY_FAILED_LOGIN_WINDOW', '15m'),
    newIpLookbackMs: read.integer('SECURITY_NEW_IP_LOOKBACK_DAYS', 30, { min: 1, max: 365 }) * day,
    exportRows: read.integer('SECURITY_EXPORT_ROWS', 10_000, { min: 1 }),
    firstRunLookbackMs: Math.min(read.duration('SECURITY_FIRST_RUN_LOOKBACK', '24h'), day),
    batchSize: read.integer('SECURITY_BATCH_SIZE', 50_000, { min: 100 }),
  }),
  async run({ sql, log, state, settings, alert, now, summary }) {
    const started = performance.now()
    const mark = await state.get<Watermark>('watermark')
    const scan = await scanAuditLogs(sql, mark, {
      now: now(),
      firstRunLookbackMs: settings.firstRunLookbackMs,
      batchSize: settings.batchSize,
    })
    if (scan.more) log.warn(`backlog: read the first ${settings.batchSize} new rows; the rest waits for the next run`)
    const scanned = performance.now()
    const findings = await evaluateRules(sql, scan.events, settings)
    const evaluated = performance.now()

    const counts = { alerted: 0, recorded: 0, continued: 0, suppressed: 0 }
    // Every finding of the run and the watermark past its rows commit together: a run that dies before the commit
    // leaves nothing (the next run reads the same rows again), one that dies after it leaves its alerts queued (the
    // next run delivers them). Nothing here waits on a channel: the runner delivers after the job.
    await sql.begin(async (tx) => {
      for (const finding of findings) {
        const result = await alert(alertOf(finding, settings.windowMs), tx)
        if (result.kind !== 'suppressed') {
          if (finding.severity === 'info') counts.recorded++
          else counts.alerted++
        } else if (finding.window) counts.continued++
        else counts.suppressed++
      }
      await state.set('watermark', scan.next, tx)
    })

    // The run's whole duration is history's (the completion line shows it); these are its phases.
    const stats = {
      events: scan.events.length,
      late: scan.late,
      findings: findings.length,
      alerted: counts.alerted,
      recordedInfo: counts.recorded,
      continued: counts.continued,
      suppressed: counts.suppressed,
      gaps: scan.next.gaps.length,
      droppedGaps: scan.droppedGaps,
      more: scan.more,
      lastId: scan.next.lastId,
      firstRun: mark === undefined,
      scanMs: Math.round(scanned - started),
      rulesMs: Math.round(evaluated - scanned),
      alertsMs: Math.round(performance.now() - evaluated),
    }
    log.info('security rules evaluated', stats)
    summary.table([
      ['events', 'late', 'alerts queued', 'info recorded', 'continuing incidents', 'suppressed'],
      [scan.events.length, scan.late, counts.alerted, counts.recorded, counts.continued, counts.suppressed],
    ])
    return stats
  },
})

/**
 * The alert of a finding. Info is recorded for the daily report only (no channel). A burst is one incident per rule
 * and subject: it continues while each sighting began within one window of the last attempt seen (a burst that keeps
 * going, read again by later runs), and a burst after a quiet window opens a new one.
 */
function alertOf(finding: Finding, windowMs: number): AlertInput {
  return {
    severity: finding.severity,
    title: finding.title,
    text: finding.text,
    fields: { rule: finding.rule, ...finding.fields },
    dedupeKey: finding.dedupeKey,
    at: finding.at,
    ...(finding.window ? { quietAfter: windowMs, since: finding.window.start } : {}),
  }
}
