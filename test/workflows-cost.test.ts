import {
  defaultJobMs,
  estimateMonthlyMinutes,
  estimateSharedMinutes,
  estimateUsage,
  isHostedRunner,
  loadSchedules,
  loadSharedRunners,
  perRunMinutes,
  runsPerMonth,
  scheduleEntries,
  setupOverheadMinutes,
} from '@admin-jobs/sdk/platform'
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

  test('counts entries in their own zones as many times as in UTC', () => {
    expect(runsPerMonth([{ cron: '30 9 * * *', timezone: 'America/New_York' }, { cron: '30 9 * * *' }])).toBeCloseTo(
      (2 * 365) / 12,
      6,
    )
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

describe('the shared runner’s cost', () => {
  const schedules = loadSchedules()
  const sharedRunners = loadSharedRunners()
  const [frequent] = sharedRunners

  test('bills one minute a tick when the monitors due in it fit in a minute with the setup', () => {
    expect(estimateSharedMinutes(frequent!, schedules, () => defaultJobMs)).toMatchObject({
      runsPerMonth: 8760,
      billedMinutesPerRun: 1,
      minutesPerMonth: 8760,
    })
  })

  test('bills two minutes for the ticks whose due monitors outgrow the minute', () => {
    // Each hour: 4 ticks run the health check alone (20 s setup + 30 s), 4 run two monitors (20 + 30 + 2 + 30 s) and
    // 4 run three (20 + 3 × 30 + 2 × 2 s): 4 × 1 + 8 × 2 = 20 billed minutes for 12 ticks.
    const cost = estimateSharedMinutes(frequent!, schedules, () => 30_000)
    expect(cost.billedMinutesPerRun).toBe(2)
    expect(cost.averageMinutesPerRun).toBeCloseTo(20 / 12, 9)
    expect(cost.minutesPerMonth).toBe(14_600)
  })

  test('keeps the shipped schedules on hosted runners at about 9,000 minutes a month, against 17,804 without it', () => {
    const usage = (sharedOn: boolean, hosted = true) =>
      estimateUsage({ schedules, sharedRunners, sharedOn, hosted }).totalMinutesPerMonth
    // 8,760 for the 5-minute tick, plus one billed minute per run of every other job's own workflow.
    const others = schedules
      .filter((s) => !frequent!.jobs.includes(s.job))
      .reduce((sum, s) => sum + estimateMonthlyMinutes(scheduleEntries(s), perRunMinutes()).minutesPerMonth, 0)
    expect(usage(true)).toBe(8760 + others)
    expect(usage(true)).toBe(9044)
    expect(usage(false)).toBe(17_804)
    expect(usage(true, false)).toBe(0)
    const lines = estimateUsage({ schedules, sharedRunners, sharedOn: true, hosted: true }).jobs
    expect(lines.find((l) => l.name === 'monitoring/health-check')).toMatchObject({
      minutesPerMonth: 0,
      sharedBy: frequent!.workflowFile,
    })
  })

  test('tells GitHub-hosted runners from self-hosted ones by ADMIN_JOBS_RUNNER', () => {
    expect(isHostedRunner(undefined)).toBe(true)
    expect(isHostedRunner('ubuntu-24.04')).toBe(true)
    expect(isHostedRunner('self-hosted')).toBe(false)
    expect(isHostedRunner('["self-hosted", "linux"]')).toBe(false)
    expect(isHostedRunner('admin-jobs-runner')).toBe(false)
  })
})
