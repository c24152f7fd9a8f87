import { ConfigError } from '@admin-jobs/sdk'
import { createEnvReader } from '@admin-jobs/sdk/platform'
import { describe, expect, it } from 'vitest'
import { localDate, percentChange, previousPeriod, readReportSettings, resolvePeriod, validateTimezone } from '#reports'

const now = new Date('2026-11-28T03:00:00Z') // a Saturday

describe('report periods', () => {
  it('reports the previous local day, which depends on the time zone', () => {
    expect(resolvePeriod('daily', { now, timezone: 'UTC' })).toMatchObject({ key: '2026-11-27', end: '2026-11-28' })
    // 22:00 on the 27th in New York, noon on the 28th in Tokyo.
    expect(resolvePeriod('daily', { now, timezone: 'America/New_York' }).key).toBe('2026-11-26')
    expect(resolvePeriod('daily', { now, timezone: 'Asia/Tokyo' }).key).toBe('2026-11-27')
    expect(localDate(now, 'America/New_York')).toBe('2026-11-27')
  })

  it('reports the previous Monday to Sunday week, keyed by its Monday', () => {
    expect(resolvePeriod('weekly', { now, timezone: 'UTC' })).toMatchObject({
      key: '2026-11-16',
      start: '2026-11-16',
      end: '2026-11-23',
    })
    // On a Monday the week that just ended is reported.
    expect(resolvePeriod('weekly', { now: new Date('2026-11-30T01:00:00Z'), timezone: 'UTC' }).key).toBe('2026-11-23')
    expect(resolvePeriod('weekly', { now, timezone: 'UTC', requested: '2026-11-05' }).key).toBe('2026-11-02')
  })

  it('reports the previous calendar month, across a year end', () => {
    expect(resolvePeriod('monthly', { now, timezone: 'UTC' })).toMatchObject({
      key: '2026-10',
      start: '2026-10-01',
      end: '2026-11-01',
    })
    expect(resolvePeriod('monthly', { now: new Date('2027-01-01T05:00:00Z'), timezone: 'UTC' })).toMatchObject({
      key: '2026-12',
      end: '2027-01-01',
    })
    // Still 31 December in New York.
    expect(resolvePeriod('monthly', { now: new Date('2027-01-01T03:00:00Z'), timezone: 'America/New_York' }).key).toBe(
      '2026-11',
    )
    expect(previousPeriod(resolvePeriod('monthly', { now, timezone: 'UTC', requested: '2026-03' })).key).toBe('2026-02')
  })

  it('refuses malformed, impossible and future periods with a ConfigError', () => {
    for (const [kind, requested] of [
      ['daily', '2026-11'],
      ['daily', '2026-02-30'],
      ['monthly', '2026-13'],
      ['weekly', 'last week'],
      ['daily', '2026-11-28'],
    ] as const) {
      expect(() => resolvePeriod(kind, { now, timezone: 'UTC', requested }), `${kind} ${requested}`).toThrow(
        ConfigError,
      )
    }
  })

  it('validates REPORT_TIMEZONE, REPORT_PERIOD, --period and REPORT_FORCE, resolving the period at the given time', () => {
    const now = new Date('2026-12-02T10:00:00Z')
    const read = (
      env: Record<string, string>,
      flags: Record<string, string | boolean> = {},
      kind = 'monthly' as const,
    ) => readReportSettings(kind, createEnvReader(env), flags, now)
    expect(validateTimezone('asia/tokyo')).toBe('Asia/Tokyo')
    expect(() => read({ REPORT_TIMEZONE: 'Mars/Olympus' })).toThrow(/REPORT_TIMEZONE is not a known IANA time zone/)
    expect(() => read({ REPORT_PERIOD: '2026-11-31' })).toThrow(ConfigError)
    expect(() => read({}, { period: '2026-12' })).toThrow(/2026-12 has not ended yet/)
    expect(() => read({ REPORT_FORCE: 'sometimes' })).toThrow(/REPORT_FORCE must be true or false/)
    expect(read({ REPORT_PERIOD: '2026-11', REPORT_FORCE: 'true' })).toEqual({
      timezone: 'UTC',
      force: true,
      period: { kind: 'monthly', key: '2026-11', start: '2026-11-01', end: '2026-12-01', timezone: 'UTC' },
    })
    // Without a request: the last complete period; --force alone is enough.
    expect(read({}, { force: true })).toMatchObject({ force: true, period: { key: '2026-11' } })
  })

  it('computes week-over-week change, with no percentage from zero', () => {
    expect([percentChange(15, 10), percentChange(5, 10), percentChange(0, 0), percentChange(3, 0)]).toEqual([
      50,
      -50,
      0,
      null,
    ])
  })
})
