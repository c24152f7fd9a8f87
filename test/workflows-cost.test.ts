import { estimateMonthlyMinutes, perRunMinutes, runsPerMonth, setupOverheadMinutes } from '@admin-jobs/sdk/platform'
import { describe, expect, test } from 'vitest'
import { loadWorkflows, scheduleOf } from './support/workflows.ts'

describe('runsPerMonth', () => {
  test('counts an every-5-minutes schedule as 8,760 runs in an average month', () => {
    expect(runsPerMonth('*/5 * * * *')).toBe(8760)
    expect(runsPerMonth('2-59/5 * * * *')).toBe(8760)
  })

  test('counts every 6 hours, daily, weekly and monthly schedules', () => {
    expect(runsPerMonth('7 */6 * * *')).toBeCloseTo((4 * 365) / 12, 6)
    expect(runsPerMonth('7 3 * * *')).toBeCloseTo(365 / 12, 6)
    expect(runsPerMonth('12 2 * * 0')).toBeCloseTo(52 / 12, 6) // 2026 has 52 Sundays
    expect(runsPerMonth('30 4 1 * *')).toBe(1)
  })

  test('adds up several crons and follows cron’s day-of-month OR day-of-week rule', () => {
    expect(runsPerMonth(['7 3 * * *', '7 15 * * *'])).toBeCloseTo((2 * 365) / 12, 6)
    // The 1st of each month or any Monday: 12 firsts + 52 Mondays, minus the firsts that are Mondays (counted once).
    const mondays = 52
    const firstsOnMonday = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].filter(
      (m) => new Date(Date.UTC(2026, m - 1, 1)).getUTCDay() === 1,
    ).length
    expect(runsPerMonth('0 0 1 * 1')).toBeCloseTo((12 + mondays - firstsOnMonday) / 12, 6)
  })

  test('rejects what is not a 5-field cron', () => {
    expect(() => runsPerMonth('* * * *')).toThrow(/5-field/)
    expect(() => runsPerMonth('61 * * * *')).toThrow()
  })
})

describe('estimateMonthlyMinutes', () => {
  test('bills each run rounded up to a whole minute, as GitHub does', () => {
    expect(estimateMonthlyMinutes('*/5 * * * *', 0.2)).toEqual({
      runsPerMonth: 8760,
      billedMinutesPerRun: 1,
      minutesPerMonth: 8760,
    })
    expect(estimateMonthlyMinutes('30 4 1 * *', 2.01).billedMinutesPerRun).toBe(3)
    expect(estimateMonthlyMinutes('30 4 1 * *', 3).billedMinutesPerRun).toBe(3)
    expect(estimateMonthlyMinutes('7 */6 * * *', 1.25)).toEqual({
      runsPerMonth: (4 * 365) / 12,
      billedMinutesPerRun: 2,
      minutesPerMonth: 244,
    })
  })

  test('adds the setup overhead to the job’s own duration', () => {
    expect(perRunMinutes(0)).toBe(setupOverheadMinutes)
    expect(perRunMinutes(90_000)).toBe(setupOverheadMinutes + 1.5)
  })

  test('estimates every job workflow present quickly', () => {
    const started = Date.now()
    for (const w of loadWorkflows().filter((x) => x.job)) {
      const cost = estimateMonthlyMinutes(
        scheduleOf(w.doc).map((s) => s.cron),
        perRunMinutes(),
      )
      expect(cost.minutesPerMonth, w.file).toBeGreaterThan(0)
    }
    expect(Date.now() - started).toBeLessThan(5000)
  })
})
