import { createAlerter } from '../../alerting/alerts.ts'
import { formatMs } from '../../text/duration.ts'
import { firstLine } from '../errors.ts'
import type { RunHook } from '../hooks.ts'

/**
 * Outcome alerts: a critical job that fails or times out opens its incident (one alert per failure streak); the next
 * success resolves it with one recovery notice. Dry runs alert nobody.
 */
export const outcomeHook: RunHook = {
  name: 'outcome alerts',
  async finished(run, outcome) {
    if (run.dryRun) return
    const alerter = createAlerter({
      sql: run.control,
      config: run.config,
      log: run.log,
      job: run.id,
      runUrl: run.runUrl,
    })
    const key = `job:${run.id}`
    if (outcome.status === 'succeeded') {
      await alerter.resolve(key, { title: `${run.id} recovered`, text: `${run.id} succeeded again.` })
    } else if (run.job.critical && (outcome.status === 'failed' || outcome.status === 'timed_out')) {
      await alerter.alert({
        severity: 'critical',
        title: `${run.id} ${outcome.status === 'failed' ? 'failed' : 'timed out'}`,
        text: outcome.error ? firstLine(outcome.error) : outcome.status,
        fields: { job: run.id, outcome: outcome.status, duration: formatMs(outcome.durationMs) },
        dedupeKey: key,
      })
    }
  },
}
