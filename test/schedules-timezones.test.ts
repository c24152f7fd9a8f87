import fs from 'node:fs'
import path from 'node:path'
import {
  describeSchedule,
  loadSchedules,
  nextRun,
  previousRun,
  runsBetween,
  scheduleEntries,
} from '@admin-jobs/sdk/platform'
import { describe, expect, test } from 'vitest'
import { expectedAt } from '#monitoring'
import { createOpsRoot } from './support/ops-root.ts'

// GitHub reads the `timezone` of each `on.schedule` entry on its own: one entry at 09:00 in New York and one at
// 09:00 UTC are two different instants, and neither borrows the other's zone.
const ops = createOpsRoot('timezones')
fs.writeFileSync(
  path.join(ops.dir, '.github', 'workflows', 'demo-zones.yml'),
  `name: demo/zones
on:
  schedule:
    - cron: "0 9 * * *"
      timezone: America/New_York
    - cron: "30 9 * * *"
  workflow_dispatch:
jobs:
  run:
    runs-on: ubuntu-latest
    steps:
      - run: pnpm tsx scripts/demo/zones.ts
`,
)
const [zones] = loadSchedules(ops.dir)

describe('a workflow whose schedule entries are in different time zones', () => {
  test('keeps each entry with its own zone, and no zone for the whole schedule', () => {
    expect(zones).toMatchObject({
      job: 'demo/zones',
      cron: ['0 9 * * *', '30 9 * * *'],
      timezone: undefined,
      entries: [{ cron: '0 9 * * *', timezone: 'America/New_York' }, { cron: '30 9 * * *' }],
    })
  })

  test('fires the New York entry at 09:00 New York time and the other at 09:30 UTC', () => {
    // 15 January: New York is UTC-5, so its 09:00 is 14:00 UTC; the UTC entry fires at 09:30 UTC.
    const day = runsBetween(zones!, new Date('2026-01-15T00:00:00Z'), new Date('2026-01-16T00:00:00Z'))
    expect(day.map((d) => d.toISOString())).toEqual(['2026-01-15T09:30:00.000Z', '2026-01-15T14:00:00.000Z'])
    expect(nextRun(zones!, new Date('2026-01-15T10:00:00Z'))?.toISOString()).toBe('2026-01-15T14:00:00.000Z')
    expect(previousRun(zones!, new Date('2026-01-15T13:59:00Z'))?.toISOString()).toBe('2026-01-15T09:30:00.000Z')
    // In July New York is UTC-4: its entry moves to 13:00 UTC, the UTC entry stays at 09:30.
    const july = runsBetween(zones!, new Date('2026-07-15T00:00:00Z'), new Date('2026-07-16T00:00:00Z'))
    expect(july.map((d) => d.toISOString())).toEqual(['2026-07-15T09:30:00.000Z', '2026-07-15T13:00:00.000Z'])
  })

  test('names each entry’s zone in words', () => {
    expect(describeSchedule(zones!)).toBe('At 09:00 (America/New_York); At 09:30 (UTC)')
  })

  test('is judged for missed runs on each entry’s own fire times', () => {
    const lastStart = new Date('2026-01-15T09:30:05Z')
    // After the 09:30 UTC run, the next run the watchdog expects is the New York one: 09:00 there, 14:00 UTC.
    expect(expectedAt({ schedule: zones!, lastStart, watchFrom: undefined })?.toISOString()).toBe(
      '2026-01-15T14:00:00.000Z',
    )
  })
})

describe('scheduleEntries', () => {
  test('gives every cron the schedule’s zone when no entries are given, as hand-built schedules expect', () => {
    expect(scheduleEntries({ cron: ['0 9 * * *', '0 21 * * *'], timezone: 'Europe/Berlin' })).toEqual([
      { cron: '0 9 * * *', timezone: 'Europe/Berlin' },
      { cron: '0 21 * * *', timezone: 'Europe/Berlin' },
    ])
    expect(scheduleEntries({ cron: ['0 9 * * *'], timezone: undefined })).toEqual([{ cron: '0 9 * * *' }])
  })

  test('reads a shared zone as the zone of a schedule whose entries all agree', () => {
    fs.writeFileSync(
      path.join(ops.dir, '.github', 'workflows', 'demo-zones.yml'),
      fs
        .readFileSync(path.join(ops.dir, '.github', 'workflows', 'demo-zones.yml'), 'utf8')
        .replace('    - cron: "30 9 * * *"\n', '    - cron: "30 9 * * *"\n      timezone: America/New_York\n'),
    )
    const [same] = loadSchedules(ops.dir)
    expect(same?.timezone).toBe('America/New_York')
    expect(describeSchedule(same!)).toBe('At 09:00; At 09:30 (America/New_York)')
  })
})
