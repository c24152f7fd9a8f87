import { defineJob, type JobContext } from '@admin-jobs/sdk'
import {
  archiveAuditLogs,
  cleanupClock,
  maxFractionFlag,
  minimumRetentionDays,
  readConnections,
  readMaxFraction,
  type SetAside,
} from './lib/index.ts'

const day = 24 * 60 * 60 * 1000

export default defineJob({
  description: 'Move audit logs past AUDIT_LOG_RETENTION_DAYS into the archive table and monthly gzip NDJSON files',
  critical: true,
  timeout: '2h',
  flags: {
    'max-fraction': maxFractionFlag('archive'),
    rebuild: {
      type: 'boolean',
      description: 'rewrite every month file from the archive table (also AUDIT_LOG_REBUILD=true)',
    },
  },
  settings: (read, config, flags) => ({
    maxFraction: readMaxFraction(read, flags, 'AUDIT_LOG_MAX_FRACTION', 1),
    retentionDays: minimumRetentionDays(config.auditLogRetentionDays),
    rebuild: flags.rebuild === true || read.boolean('AUDIT_LOG_REBUILD', false),
    // Gentler (smaller) batches on a busy server; also lets tests interrupt a run between many batches.
    batchMs: read.integer('AUDIT_LOG_BATCH_MS', 100, { min: 5, max: 250 }),
    connections: readConnections(read),
  }),
  async run({ sql, log, dryRun, signal, settings, config, now, run, state, summary }) {
    const { at } = await cleanupClock(sql, { now, pinned: run.clockPinned })
    const cutoff = new Date(at.getTime() - settings.retentionDays * day)
    const result = await archiveAuditLogs(sql, {
      cutoff,
      archiveDir: config.archiveDir,
      maxFraction: settings.maxFraction,
      maxFractionVariable: 'AUDIT_LOG_MAX_FRACTION',
      rebuild: settings.rebuild,
      targetBatchMs: settings.batchMs,
      connections: settings.connections,
      dryRun,
      signal,
      log,
    })
    if (result.files.length) summary.table([['month file'], ...result.files.map((f) => [f])])
    await reportSetAside(result.setAside, { log, state, summary })
    return { ...result, setAside: result.setAside.count }
  },
})

/**
 * Rows no month file can hold stay in audit_logs: warned about, with their ids, the first time they are seen (and
 * when more appear), then counted quietly in the run's stats until someone fixes or deletes them.
 */
async function reportSetAside(
  setAside: SetAside,
  { log, state, summary }: Pick<JobContext, 'log' | 'state' | 'summary'>,
): Promise<void> {
  const reported = (await state.get<number>('set-aside-reported')) ?? 0
  if (setAside.count > reported) {
    const more = setAside.count > setAside.ids.length ? ` and ${setAside.count - setAside.ids.length} more` : ''
    const text =
      `set aside ${setAside.count} audit_logs rows whose occurred_at is -infinity or before year 1 (ids ` +
      `${setAside.ids.join(', ')}${more}): no month file can hold them, so they stay in audit_logs while every other ` +
      'row is archived; correct their occurred_at or delete them'
    log.warn(text)
    summary.add(text)
  } else if (setAside.count > 0) {
    log.info('rows still set aside (reported before)', { count: setAside.count })
  }
  if (setAside.count !== reported) await state.set('set-aside-reported', setAside.count)
}
