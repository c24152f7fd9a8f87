import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { median } from '@admin-jobs/sdk'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  backupFileName,
  isoWeekKey,
  isSuspiciouslySmall,
  parseBackupFileName,
  pruneBackups,
  type RetentionItem,
  selectRetained,
} from '#backups'
import { createTestDatabase, type TestDatabase } from './support/db.ts'

/** One dump a day at 02:15 UTC through 2026, plus a manual one at 18:00 on 2026-12-30. */
function simulatedYear(): RetentionItem[] {
  const items: RetentionItem[] = []
  for (let t = Date.UTC(2026, 0, 1, 2, 15); t < Date.UTC(2027, 0, 1); t += 86_400_000) {
    items.push({ name: backupFileName('admin', new Date(t)), takenAt: new Date(t) })
  }
  const manual = new Date('2026-12-30T18:00:00Z')
  items.push({ name: backupFileName('admin', manual), takenAt: manual })
  return items
}

const day = (d: string, time = '021500') => `admin-${d.replace(/-/g, '')}T${time}Z.dump`

// 7 daily (Dec 25–31, the 30th's newest being the manual one), the newest of the 4 ISO weeks ending Dec 31 (31st, 27th,
// 20th, 13th), and the newest of each of the 12 months (the last day of each).
const expectedAfterYear = [
  day('2026-01-31'),
  day('2026-02-28'),
  day('2026-03-31'),
  day('2026-04-30'),
  day('2026-05-31'),
  day('2026-06-30'),
  day('2026-07-31'),
  day('2026-08-31'),
  day('2026-09-30'),
  day('2026-10-31'),
  day('2026-11-30'),
  day('2026-12-13'),
  day('2026-12-20'),
  day('2026-12-25'),
  day('2026-12-26'),
  day('2026-12-27'),
  day('2026-12-28'),
  day('2026-12-29'),
  day('2026-12-30', '180000'),
  day('2026-12-31'),
]

describe('backup retention (pure)', () => {
  it('keeps exactly 7 daily, 4 weekly and 12 monthly dumps of a simulated year', () => {
    const { keep, prune } = selectRetained(simulatedYear(), { daily: 7, weekly: 4, monthly: 12 })
    expect(keep.map((k) => k.name).sort()).toEqual(expectedAfterYear)
    expect(prune).toHaveLength(366 - expectedAfterYear.length)
  })

  it('ends with the same files when it prunes after every daily dump as when it prunes once at the end', () => {
    let present: RetentionItem[] = []
    for (const item of simulatedYear().sort((a, b) => a.takenAt.getTime() - b.takenAt.getTime())) {
      present = selectRetained([...present, item]).keep
    }
    expect(present.map((k) => k.name).sort()).toEqual(expectedAfterYear)
  })

  it('follows a configured policy and always keeps the newest dump', () => {
    const { keep } = selectRetained(simulatedYear(), { daily: 1, weekly: 0, monthly: 0 })
    expect(keep.map((k) => k.name)).toEqual([day('2026-12-31')])
    const monthly = selectRetained(simulatedYear(), { daily: 2, weekly: 0, monthly: 3 }).keep.map((k) => k.name)
    expect(monthly).toEqual([day('2026-12-31'), day('2026-12-30', '180000'), day('2026-11-30'), day('2026-10-31')])
  })

  it('gives failed dumps no retention slot and drops them once older than the daily window', () => {
    const items = simulatedYear().map((i) => ({
      ...i,
      failed: i.name === day('2026-12-31') || i.name === day('2026-06-15'),
    }))
    const { keep } = selectRetained(items)
    const kept = keep.map((k) => k.name)
    expect(kept).toContain(day('2026-12-31')) // kept for investigation, but…
    expect(kept).toContain(day('2026-12-24')) // …the daily slots are filled by 7 good dumps
    expect(kept).not.toContain(day('2026-06-15'))
    expect(kept).toHaveLength(expectedAfterYear.length + 1)
  })

  it('numbers ISO weeks across the turn of the year', () => {
    expect(isoWeekKey(new Date('2026-12-31T12:00:00Z'))).toBe('2026-W53')
    expect(isoWeekKey(new Date('2027-01-03T12:00:00Z'))).toBe('2026-W53')
    expect(isoWeekKey(new Date('2027-01-04T00:00:00Z'))).toBe('2027-W01')
    expect(isoWeekKey(new Date('2025-12-29T00:00:00Z'))).toBe('2026-W01')
  })

  it('names dumps <db>-<UTC timestamp>.dump and parses only such names', () => {
    const at = new Date('2026-11-28T02:03:04.567Z')
    expect(backupFileName('admin_prod', at)).toBe('admin_prod-20261128T020304Z.dump')
    expect(parseBackupFileName('my-db-20261128T020304Z.dump')).toEqual({
      database: 'my-db',
      takenAt: new Date('2026-11-28T02:03:04Z'),
    })
    expect(parseBackupFileName('admin-20261128T020304Z.dump.sha256')).toBeUndefined()
    expect(parseBackupFileName('notes.txt')).toBeUndefined()
  })

  it('flags a dump smaller than half the median of the previous ones', () => {
    expect(median([5, 1, 3])).toBe(3)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(isSuspiciouslySmall(49, [100, 100, 10, 100])).toBe(true)
    expect(isSuspiciouslySmall(50, [100, 100, 10, 100])).toBe(false)
    expect(isSuspiciouslySmall(1, [])).toBe(false)
  })
})

describe('backup pruning on disk', () => {
  let db: TestDatabase
  let dir: string
  beforeAll(async () => {
    db = await createTestDatabase('backup_prune')
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aj-prune-'))
  })
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

  it('removes exactly the pruned dumps of a simulated year with their checksums and leaves other files alone', async () => {
    for (const item of simulatedYear()) {
      fs.writeFileSync(path.join(dir, item.name), 'dump')
      fs.writeFileSync(path.join(dir, `${item.name}.sha256`), 'sum')
    }
    await db.sql`
      insert into jobs.backups (database, file, status, taken_at)
      values ('admin', ${day('2026-03-01')}, 'verified', '2026-03-01T02:15:00Z'),
             ('admin', ${day('2026-12-31')}, 'verified', '2026-12-31T02:15:00Z')`
    const others = ['other-20260101T021500Z.dump', 'README.txt']
    for (const f of others) fs.writeFileSync(path.join(dir, f), 'x')

    const dry = await pruneBackups({
      sql: db.sql,
      dir,
      database: 'admin',
      policy: { daily: 7, weekly: 4, monthly: 12 },
      dryRun: true,
    })
    expect(dry.pruned).toHaveLength(346)
    expect(fs.readdirSync(dir)).toHaveLength(366 * 2 + 2)

    const result = await pruneBackups({
      sql: db.sql,
      dir,
      database: 'admin',
      policy: { daily: 7, weekly: 4, monthly: 12 },
    })
    expect(result.kept).toEqual(expectedAfterYear)
    expect(fs.readdirSync(dir).sort()).toEqual(
      [...expectedAfterYear, ...expectedAfterYear.map((f) => `${f}.sha256`), ...others].sort(),
    )
    const rows = await db.sql`select file, pruned_at is not null as pruned from jobs.backups order by file`
    expect(rows.map((r) => [r.file, r.pruned])).toEqual([
      [day('2026-03-01'), true],
      [day('2026-12-31'), false],
    ])
  })
})
