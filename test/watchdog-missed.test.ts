import { checkFailing } from '@admin-jobs/sdk/platform'
import { describe, expect, it } from 'vitest'
import { expectedAt } from '#monitoring'

const at = (iso: string) => new Date(iso)
const sixHourly = { cron: ['7 */6 * * *'], timezone: undefined }
const fiveMinutes = { cron: ['*/5 * * * *'], timezone: undefined }
const nineInNewYork = { cron: ['0 9 * * *'], timezone: 'America/New_York' }
const longAgo = at('2026-01-01T00:00:00Z')

describe('when the next run is expected', () => {
  const expect6 = (lastStart: Date | undefined, watchFrom?: Date) =>
    expectedAt({ schedule: { ...sixHourly, job: 'cleanup/sessions' } as never, lastStart, watchFrom })

  it('is the first fire time after the last run, so a late run still satisfies its own fire time', () => {
    expect(expect6(at('2026-11-28T06:09:00Z'))).toEqual(at('2026-11-28T12:07:00Z'))
    expect(expect6(at('2026-11-28T12:31:00Z'))).toEqual(at('2026-11-28T18:07:00Z'))
  })

  it('follows the five-minute cron of a frequent job', () => {
    const next = expectedAt({
      schedule: fiveMinutes as never,
      lastStart: at('2026-11-28T12:46:00Z'),
      watchFrom: longAgo,
    })
    expect(next).toEqual(at('2026-11-28T12:50:00Z'))
  })

  it('is 09:00 New York at 13:00 UTC the day daylight saving time starts, and 14:00 UTC the day it ends', () => {
    const base = { schedule: nineInNewYork as never, watchFrom: longAgo }
    expect(expectedAt({ ...base, lastStart: at('2026-03-07T14:00:00Z') })).toEqual(at('2026-03-08T13:00:00Z'))
    expect(expectedAt({ ...base, lastStart: at('2026-10-31T13:00:00Z') })).toEqual(at('2026-11-01T14:00:00Z'))
  })

  it('is the first valid time after a spring-forward gap that swallowed the fire time', () => {
    const schedule = { cron: ['30 2 * * *'], timezone: 'Europe/Berlin' }
    expect(
      expectedAt({ schedule: schedule as never, lastStart: at('2026-03-28T01:30:00Z'), watchFrom: longAgo }),
    ).toEqual(at('2026-03-29T01:00:00Z'))
  })

  it('counts for a never-run job only from when the watchdog first saw it, and not during a pause that ended', () => {
    const monthly = { cron: ['0 4 1 * *'], timezone: undefined }
    expect(
      expectedAt({ schedule: monthly as never, lastStart: undefined, watchFrom: at('2026-11-15T00:00:00Z') }),
    ).toEqual(at('2026-12-01T04:00:00Z'))
    expect(expect6(at('2026-11-27T00:07:00Z'), at('2026-11-28T11:00:00Z'))).toEqual(at('2026-11-28T12:07:00Z'))
    expect(expectedAt({ schedule: monthly as never, lastStart: undefined, watchFrom: undefined })).toBeUndefined()
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
