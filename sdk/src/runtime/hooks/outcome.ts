import { formatMs } from '../../text/duration.ts'
import { incidentsOf } from '../context.ts'
import { firstLine } from '../errors.ts'
import type { RunHook } from '../hooks.ts'

/**
 * Outcome alerts, queued in the transaction that records the outcome: a critical job that fails or times out opens
 * its incident (one alert per failure streak); the next success resolves it with one recovery notice.
 */
export const outcomeHook: RunHook = {
  name: 'outcome alerts',
  async recording(run, outcome, tx) {
    if (run.dryRun) return
    const incidents = incidentsOf(run)
    const key = `job:${run.id}`
    if (outcome.status === 'succeeded') {
      await incidents.resolve(key, { title: `${run.id} recovered`, text: `${run.id} succeeded again.` }, tx)
    } else if (run.job.critical && (outcome.status === 'failed' || outcome.status === 'timed_out')) {
      await incidents.alert(
        {
          severity: 'critical',
          title: `${run.id} ${outcome.status === 'failed' ? 'failed' : 'timed out'}`,
          text: outcome.error ? firstLine(outcome.error) : outcome.status,
          fields: { outcome: outcome.status, duration: formatMs(outcome.durationMs) },
          dedupeKey: key,
        },
        tx,
      )
    }
  },
}
