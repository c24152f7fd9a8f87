import { checkFailing, checkMissed, defaultGrace } from '@admin-jobs/sdk/platform'
import { describe, expect, it } from 'vitest'

const at = (iso: string) => new Date(iso)
const sixHourly = { cron: ['7 */6 * * *'], timezone: undefined }
const fiveMinutes = { cron: ['*/5 * * * *'], timezone: undefined }
const nineInNewYork = { cron: ['0 9 * * *'], timezone: 'America/New_York' }
const longAgo = at('2026-01-01T00:00:00Z')

describe('missed-run detection', () => {
  it('gives 30 minutes of grace to hourly and slower jobs and two intervals to faster ones', () => {
    expect(defaultGrace(6 * 3_600_000)).toBe(30 * 60_000)
    expect(defaultGrace(3_600_000)).toBe(30 * 60_000)
    expect(defaultGrace(5 * 60_000)).toBe(10 * 60_000)
  })

  it('reports the first fire after the last run once it is more than the grace in the past', () => {
    const lastRunAt = at('2026-11-28T06:09:00Z')
    const base = { job: 'cleanup/sessions', schedule: sixHourly, lastRunAt, watchFrom: longAgo }
    expect(checkMissed({ ...base, now: at('2026-11-28T12:36:00Z') })).toBeUndefined()
    const missed = checkMissed({ ...base, now: at('2026-11-28T12:38:00Z') })
    expect(missed?.expectedAt.toISOString()).toBe('2026-11-28T12:07:00.000Z')
    expect(missed?.lastRunAt).toEqual(lastRunAt)
    expect(missed?.graceMs).toBe(30 * 60_000)
  })

  it('is satisfied by a late run that started after the fire time', () => {
    const missed = checkMissed({
      job: 'cleanup/sessions',
      schedule: sixHourly,
      lastRunAt: at('2026-11-28T12:31:00Z'),
      now: at('2026-11-28T13:00:00Z'),
      watchFrom: longAgo,
    })
    expect(missed).toBeUndefined()
  })

  it('waits two intervals for a five-minute job', () => {
    const base = { job: 'monitoring/health-check', schedule: fiveMinutes, lastRunAt: at('2026-11-28T12:46:00Z') }
    expect(checkMissed({ ...base, now: at('2026-11-28T12:59:30Z'), watchFrom: longAgo })).toBeUndefined()
    expect(checkMissed({ ...base, now: at('2026-11-28T13:00:30Z'), watchFrom: longAgo })?.expectedAt).toEqual(
      at('2026-11-28T12:50:00Z'),
    )
  })

  it('expects 09:00 New York at 13:00 UTC the day daylight saving time starts', () => {
    const base = { job: 'notifications/expiry', schedule: nineInNewYork, lastRunAt: at('2026-03-07T14:00:00Z') }
    // A fixed 24-hour interval would wait until 14:30 UTC; the schedule's own clock moved an hour earlier.
    const missed = checkMissed({ ...base, now: at('2026-03-08T13:45:00Z'), watchFrom: longAgo })
    expect(missed?.expectedAt.toISOString()).toBe('2026-03-08T13:00:00.000Z')
  })

  it('does not cry wolf the day daylight saving time ends, when 09:00 New York is 14:00 UTC', () => {
    const base = { job: 'notifications/expiry', schedule: nineInNewYork, lastRunAt: at('2026-10-31T13:00:00Z') }
    expect(checkMissed({ ...base, now: at('2026-11-01T14:15:00Z'), watchFrom: longAgo })).toBeUndefined()
    expect(checkMissed({ ...base, now: at('2026-11-01T14:31:00Z'), watchFrom: longAgo })?.expectedAt).toEqual(
      at('2026-11-01T14:00:00Z'),
    )
  })

  it('expects a run skipped over by the spring-forward gap at the first valid time after it', () => {
    const schedule = { cron: ['30 2 * * *'], timezone: 'Europe/Berlin' }
    const base = { job: 'backups/database', schedule, lastRunAt: at('2026-03-28T01:30:00Z'), watchFrom: longAgo }
    expect(checkMissed({ ...base, now: at('2026-03-29T01:20:00Z') })).toBeUndefined()
    expect(checkMissed({ ...base, now: at('2026-03-29T01:45:00Z') })?.expectedAt).toEqual(at('2026-03-29T01:00:00Z'))
  })

  it('expects a never-run job only from the time the watchdog first saw it', () => {
    const base = {
      job: 'reports/monthly',
      schedule: { cron: ['0 4 1 * *'], timezone: undefined },
      lastRunAt: undefined,
    }
    expect(checkMissed({ ...base, now: at('2026-11-28T12:00:00Z'), watchFrom: at('2026-11-15T00:00:00Z') })).toBe(
      undefined,
    )
    expect(
      checkMissed({ ...base, now: at('2026-12-01T05:00:00Z'), watchFrom: at('2026-11-15T00:00:00Z') })?.expectedAt,
    ).toEqual(at('2026-12-01T04:00:00Z'))
  })

  it('does not count fire times during a pause that has since ended', () => {
    const missed = checkMissed({
      job: 'cleanup/sessions',
      schedule: sixHourly,
      lastRunAt: at('2026-11-27T00:07:00Z'),
      now: at('2026-11-28T12:10:00Z'),
      watchFrom: at('2026-11-28T11:00:00Z'),
    })
    expect(missed).toBeUndefined()
  })

  it('honours a grace override', () => {
    const base = { job: 'cleanup/sessions', schedule: sixHourly, lastRunAt: at('2026-11-28T06:09:00Z') }
    expect(
      checkMissed({ ...base, now: at('2026-11-28T12:20:00Z'), watchFrom: longAgo, graceMs: 600_000 }),
    ).toBeDefined()
  })

  it('never reports a workflow without a schedule', () => {
    expect(
      checkMissed({ job: 'x/y', schedule: { cron: [], timezone: undefined }, lastRunAt: undefined, now: new Date() }),
    ).toBeUndefined()
  })
})

describe('failure streaks', () => {
  const run = (status: string, day: number, error: string | null = null) => ({
    status,
    startedAt: at(`2026-11-${String(day).padStart(2, '0')}T03:00:00Z`),
    error,
  })

  it('reports a job whose newest runs all failed, with the first failure and the latest error', () => {
    const failing = checkFailing('cleanup/tokens', [
      run('failed', 28, 'connection refused\nstack'),
      run('timed_out', 27),
      run('failed', 26),
      run('succeeded', 25),
    ])
    expect(failing).toEqual({
      job: 'cleanup/tokens',
      failures: 3,
      since: at('2026-11-26T03:00:00Z'),
      lastError: 'connection refused',
    })
  })

  it('stays quiet when a success breaks the streak before the threshold', () => {
    expect(checkFailing('cleanup/tokens', [run('failed', 28), run('failed', 27), run('succeeded', 26)])).toBe(undefined)
    expect(checkFailing('cleanup/tokens', [run('failed', 28), run('failed', 27)], 2)?.failures).toBe(2)
  })
})
