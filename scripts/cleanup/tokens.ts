import { defineJob } from '@admin-jobs/sdk'
import { cleanupClock, maxFractionFlag, purgeInBatches, readConnections, readMaxFraction } from './lib/index.ts'

const day = 24 * 60 * 60 * 1000

export default defineJob({
  description:
    'Delete expired tokens (refresh, password reset, email verification, invite) and tokens revoked more than 24 hours ago',
  timeout: '15m',
  flags: {
    'max-fraction': maxFractionFlag('delete'),
  },
  settings: (read, _config, flags) => ({
    maxFraction: readMaxFraction(read, flags, 'TOKENS_MAX_FRACTION', 1),
    connections: readConnections(read),
  }),
  async run({ sql, log, dryRun, signal, settings, now, run }) {
    // Rows expire by the database's clock; a runner clock that disagrees with it stops the run here.
    const { at } = await cleanupClock(sql, { now, pinned: run.clockPinned })
    return purgeInBatches(sql, {
      table: 'tokens',
      ranges: [
        { column: 'expires_at', before: at },
        { column: 'revoked_at', before: new Date(at.getTime() - day) },
      ],
      maxFraction: settings.maxFraction,
      connections: settings.connections,
      maxFractionVariable: 'TOKENS_MAX_FRACTION',
      dryRun,
      signal,
      log,
    })
  },
})
