import { firstLine } from '../errors.ts'
import type { RunHook } from '../hooks.ts'

/**
 * The outage guard: every job that cannot open the database feeds one shared "database unreachable" incident (kept
 * in a file, since the database cannot hold its own outage), so an outage pages once, not once per job.
 */
export const outageHook: RunHook = {
  name: 'database outage',
  async connectFailed(run, error) {
    // Loaded only when the database is down: no healthy run pays for the file-kept incident's code.
    const { observeDatabase } = await import('../../alerting/database-outage.ts')
    await observeDatabase({
      config: run.config,
      log: run.log,
      ok: false,
      error: firstLine(error),
      now: run.now(),
      job: run.id,
      runUrl: run.runUrl,
    })
  },
}
