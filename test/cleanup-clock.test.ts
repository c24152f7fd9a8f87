import { beforeAll, describe, expect, it } from 'vitest'
import { cleanupClock, maxClockSkewMs, minimumRetentionDays } from '../scripts/cleanup/lib/clock.ts'
import { createTestDatabase, type TestDatabase } from './support/db.ts'

let db: TestDatabase

beforeAll(async () => {
  db = await createTestDatabase('cleanup_clock')
})

describe("cleanup's clock check", () => {
  it("takes the database's clock when the runner's agrees with it", async () => {
    const clock = await cleanupClock(db.sql, { now: () => new Date(), pinned: false })
    expect(clock.source).toBe('database')
    expect(Math.abs(clock.skewMs)).toBeLessThan(maxClockSkewMs)
    const [{ at }] = await db.sql<{ at: Date }[]>`select now() as at`
    expect(Math.abs(at.getTime() - clock.at.getTime())).toBeLessThan(5_000)
  })

  it('accepts a runner a few minutes off and reports the skew', async () => {
    const clock = await cleanupClock(db.sql, { now: () => new Date(Date.now() + 3 * 60_000), pinned: false })
    expect(clock.source).toBe('database')
    expect(clock.skewMs).toBeGreaterThan(2.9 * 60_000)
    expect(clock.skewMs).toBeLessThan(3.1 * 60_000)
  })

  it("refuses when the runner's clock is hours ahead or behind, saying what to check", async () => {
    for (const offset of [2 * 3_600_000, -6 * 60_000]) {
      const check = cleanupClock(db.sql, { now: () => new Date(Date.now() + offset), pinned: false })
      await expect(check).rejects.toThrow(/clock check: the runner's clock .* differ by .*NTP.*Nothing was removed/)
    }
    await expect(cleanupClock(db.sql, { now: () => new Date(Date.now() + 7_200_000), pinned: false })).rejects.toThrow(
      "the runner's clock is ahead",
    )
  })

  it('takes a pinned clock as given (tests, replays of a past day)', async () => {
    const pinned = new Date('2020-01-01T00:00:00Z')
    expect(await cleanupClock(db.sql, { now: () => pinned, pinned: true })).toEqual({
      at: pinned,
      source: 'pinned',
      skewMs: 0,
    })
  })

  it('refuses an audit-log retention shorter than a week as a configuration error', () => {
    expect(minimumRetentionDays(7)).toBe(7)
    expect(minimumRetentionDays(90)).toBe(90)
    expect(() => minimumRetentionDays(6)).toThrow(/AUDIT_LOG_RETENTION_DAYS=6 would archive audit rows/)
  })
})
