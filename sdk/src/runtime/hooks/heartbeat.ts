import type { HeartbeatEvent } from '../../alerting/heartbeat.ts'
import type { RunHook } from '../hooks.ts'
import type { Logger } from '../log.ts'

/** Pings when HEARTBEAT_URL is set; the ping code loads only then. */
async function ping(base: string | undefined, job: string, event: HeartbeatEvent, log: Logger, body?: string) {
  if (!base) return
  const { pingHeartbeat } = await import('../../alerting/heartbeat.ts')
  await pingHeartbeat(base, job, event, log, body)
}

/**
 * HEARTBEAT_URL pings (healthchecks.io protocol): `/start` when the job starts, success or `/fail` when it ends, and
 * success for a paused run (a pause is planned, not an outage). The start ping runs beside the job and is awaited
 * before the last one, so neither is cut off by the exit. Dry runs ping nothing.
 */
export function heartbeatHook(): RunHook {
  let startPing: Promise<unknown> | undefined
  const base = (run: { dryRun: boolean; config: { heartbeatUrl: string | undefined } }) =>
    run.dryRun ? undefined : run.config.heartbeatUrl
  return {
    name: 'heartbeat',
    async skipped(run, note) {
      if (note.startsWith('paused')) await ping(base(run), run.id, 'success', run.log, `skipped: ${note}`)
    },
    async started(run) {
      startPing = ping(base(run), run.id, 'start', run.log)
    },
    async finished(run, outcome) {
      await startPing
      const ok = outcome.status === 'succeeded'
      const body = outcome.error ? run.mask(outcome.error.message) : undefined
      await ping(base(run), run.id, ok ? 'success' : 'fail', run.log, body)
    },
  }
}
