import type { Logger } from './log.ts'

/** Which heartbeat ping to send (healthchecks.io protocol: `/start`, success, `/fail`). */
export type HeartbeatEvent = 'start' | 'success' | 'fail'

/** The URL slug of a job: `cleanup/sessions` → `cleanup-sessions`. */
export function jobSlug(job: string): string {
  return job.replace(/\//g, '-')
}

/** Pings `<base>/<slug>[/start|/fail]`; 5s timeout, one retry, never throws (a dead monitor must not fail a job). */
export async function pingHeartbeat(
  base: string | undefined,
  job: string,
  event: HeartbeatEvent,
  log: Logger,
  body?: string,
): Promise<boolean> {
  if (!base) return false
  const url = `${base.replace(/\/$/, '')}/${jobSlug(job)}${event === 'success' ? '' : `/${event}`}`
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      const response = await fetch(url, {
        method: 'POST',
        body: body?.slice(0, 10_000),
        signal: AbortSignal.timeout(5000),
      })
      if (response.ok) return true
      if (response.status < 500) break
    } catch {
      // network failure: retried once below, then reported as a warning
    }
  }
  log.warn('heartbeat ping failed', { event })
  return false
}
