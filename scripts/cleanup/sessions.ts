import { defineJob, purgeInBatches } from '@admin-jobs/sdk'

export default defineJob({
  description: 'Delete expired sessions and sessions revoked more than 24 hours ago',
  timeout: '15m',
  async run({ sql, log, dryRun, signal }) {
    const where = sql`(expires_at < now() or revoked_at < now() - interval '24 hours')`
    const result = await purgeInBatches(sql, { table: 'sessions', where, dryRun, signal, log })
    log.info(dryRun ? 'sessions that would be deleted' : 'sessions purged', { deleted: result.deleted })
    return result
  },
})
