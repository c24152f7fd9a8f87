import type { Logger } from '../runtime/log.ts'

/** Which heartbeat ping to send (healthchecks.io protocol: `/start`, success, `/fail`). */
export type HeartbeatEvent = 'start' | 'success' | 'fail'

/** The URL slug of a job: `cleanup/sessions` → `cleanup-sessions`. */
export function jobSlug(job: string): string {
  return job.replace(/\//g, '-')
}

/** How long one ping may take; the runner awaits its pings, so this bounds what a slow monitor adds to a run. */
export const heartbeatTimeoutMs = 3000

/**
 * Pings `<base>/<slug>[/start|/fail]` (POST, body up to 10 kB); 3s timeout, one retry after a refused connection or
 * a 5xx (not after a timeout), never throws: a dead monitor must not fail a job.
 */
export async function pingHeartbeat(
  base: string | undefined,
  job: string,
  event: HeartbeatEvent,
  log: Logger,
  body?: string,
): Promise<boolean> {
  if (!base) return false
  const url = `${base.replace(/\/$/, '')}/${jobSlug(job)}${event === 'success' ? '' : `/${event}`}`
  let reason = ''
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      const response = await fetch(url, {
        method: 'POST',
        body: body?.slice(0, 10_000),
        signal: AbortSignal.timeout(heartbeatTimeoutMs),
      })
      await response.body?.cancel().catch(() => {})
      if (response.ok) return true
      reason = `HTTP ${response.status}`
      if (response.status < 500) break
    } catch (err) {
      const name = (err as Error).name
      reason = name === 'TimeoutError' ? `no answer within ${heartbeatTimeoutMs}ms` : 'connection failed'
      if (name === 'TimeoutError') break
    }
  }
  log.warn('heartbeat ping failed', { event, reason })
  return false
}
