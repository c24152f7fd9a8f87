import { defineJob } from '@admin-jobs/sdk'
import { continuesIncident, recordIncident, recordInfo } from './lib/incidents.ts'
import { evaluateRules } from './lib/rules.ts'
import { scanAuditLogs, type Watermark } from './lib/watermark.ts'

const day = 24 * 60 * 60 * 1000

export default defineJob({
  description: 'Evaluate new audit_logs rows against the security rules and alert once per incident',
  critical: true,
  exemptFromPauseAll: 'attacks do not wait for maintenance to end',
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
  async run({ sql, log, dryRun, state, settings, alert, job, now, summary }) {
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

    let alerted = 0
    let recorded = 0
    let continued = 0
    let suppressed = 0
    const undelivered: string[] = []
    for (const finding of findings) {
      if (await continuesIncident(sql, finding, settings.windowMs)) {
        continued++
        if (!dryRun) await recordIncident(sql, finding, settings.windowMs)
        continue
      }
      if (finding.severity === 'info') {
        // Info goes to the daily report only: recorded in jobs.alerts, sent nowhere.
        if (dryRun) log.info('dry run: would record info alert', { title: finding.title })
        else if (await recordInfo(sql, job, finding)) recorded++
        else suppressed++
        continue
      }
      const result = await alert({
        severity: finding.severity,
        title: finding.title,
        text: finding.text,
        fields: { rule: finding.rule, ...finding.fields },
        dedupeKey: finding.dedupeKey,
      })
      if (result.failed.length > 0 && result.delivered.length === 0) undelivered.push(finding.title)
      else if (result.kind === 'suppressed') suppressed++
      else alerted++
      if (!dryRun && !(result.failed.length > 0 && result.delivered.length === 0))
        await recordIncident(sql, finding, settings.windowMs)
    }
    // Undelivered alerts keep the watermark where it was: the next run re-reads these rows and tries again, while
    // the dedupe keys of the alerts that did go out keep them from repeating.
    if (undelivered.length) throw new Error(`${undelivered.length} alert(s) reached no channel: ${undelivered[0]}`)
    await state.set('watermark', scan.next)

    const stats = {
      events: scan.events.length,
      late: scan.late,
      findings: findings.length,
      alerted,
      recordedInfo: recorded,
      continued,
      suppressed,
      gaps: scan.next.gaps.length,
      droppedGaps: scan.droppedGaps,
      more: scan.more,
      lastId: scan.next.lastId,
      firstRun: mark === undefined,
      ms: Math.round(performance.now() - started),
      scanMs: Math.round(scanned - started),
      rulesMs: Math.round(evaluated - scanned),
      alertsMs: Math.round(performance.now() - evaluated),
    }
    log.info('security rules evaluated', stats)
    summary.table([
      ['events', 'late', 'alerts sent', 'info recorded', 'continuing incidents', 'suppressed'],
      [scan.events.length, scan.late, alerted, recorded, continued, suppressed],
    ])
    return stats
  },
})
