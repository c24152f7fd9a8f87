import fs from 'node:fs'
import path from 'node:path'
import { defineJob } from '@admin-jobs/sdk'
import { loadSchedules, readCronEntries, readRunLog, slotAt } from '@admin-jobs/sdk/platform'
import { runInProcess } from '@admin-jobs/sdk/testing'
import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript } from './support/run.ts'

let db: TestDatabase

beforeAll(async () => {
  db = await createTestDatabase('slots_logs')
})

const runsOf = (job: string) => db.sql`select * from jobs.runs where job = ${job} order by id`
const job = (outcome: () => Promise<object>) =>
  defineJob({ description: 'slot test job', timeout: '30s', retry: false, run: outcome })
const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: db.url, ...extra })

describe('schedule slots', () => {
  it('runs a slot once: a second scheduled or dispatched run of a served slot ends skipped, naming both', async () => {
    const slot = '2026-12-02T03:07:00.000Z'
    const ok = job(async () => ({ done: 1 }))
    const first = await runInProcess(ok, {
      id: 'test/slot',
      env: env({ ADMIN_JOBS_TRIGGER: 'schedule', ADMIN_JOBS_SLOT: slot }),
    })
    expect(first.code, first.output).toBe(0)
    const late = await runInProcess(ok, {
      id: 'test/slot',
      env: env({ ADMIN_JOBS_TRIGGER: 'dispatch', ADMIN_JOBS_SLOT: slot }),
    })
    expect(late.code, late.output).toBe(0)
    const [served, skipped] = await runsOf('test/slot')
    expect(served).toMatchObject({ status: 'succeeded', trigger: 'schedule' })
    expect(served.slot.toISOString()).toBe(slot)
    expect(skipped).toMatchObject({ status: 'skipped', trigger: 'dispatch' })
    expect(skipped.stats).toEqual({
      reason: `slot ${slot} already served by run ${served.id}`,
      slot,
      servedBy: Number(served.id),
    })
  })

  it('never skips a re-run, a manual dispatch or a local run, and runs a slot again when its run failed', async () => {
    const slot = '2026-12-02T09:00:00.000Z'
    let fail = true
    const flaky = job(async () => {
      if (fail) throw new Error('upstream down')
      return { done: 1 }
    })
    expect(
      (
        await runInProcess(flaky, {
          id: 'test/slot2',
          env: env({ ADMIN_JOBS_TRIGGER: 'schedule', ADMIN_JOBS_SLOT: slot }),
        })
      ).code,
    ).toBe(1)
    fail = false
    expect(
      (
        await runInProcess(flaky, {
          id: 'test/slot2',
          env: env({ ADMIN_JOBS_TRIGGER: 'schedule', ADMIN_JOBS_SLOT: slot }),
        })
      ).code,
    ).toBe(0)
    for (const trigger of ['rerun', 'workflow_dispatch', 'local'])
      expect(
        (
          await runInProcess(flaky, {
            id: 'test/slot2',
            env: env({ ADMIN_JOBS_TRIGGER: trigger, ADMIN_JOBS_SLOT: slot }),
          })
        ).code,
      ).toBe(0)
    const statuses = (await runsOf('test/slot2')).map((r) => `${r.trigger}:${r.status}`)
    expect(statuses).toEqual([
      'schedule:failed',
      'schedule:succeeded',
      'rerun:succeeded',
      'workflow_dispatch:succeeded',
      'local:succeeded',
    ])
  })

  it("records the slot of a job's workflow schedule: the latest fire time at or before the start", async () => {
    const before = new Date()
    const result = await runInProcess(
      job(async () => ({})),
      { id: 'cleanup/tokens', env: env() },
    )
    expect(result.code, result.output).toBe(0)
    const [run] = await runsOf('cleanup/tokens')
    const [schedule] = loadSchedules(undefined, 'cleanup/tokens')
    expect(run.slot.toISOString()).toBe(slotAt(schedule!, before)!.toISOString())
    expect(run.slot.getTime()).toBeLessThanOrEqual(run.started_at.getTime())
  })

  it("reads every shipped workflow's schedule without a YAML parser exactly as the YAML reading does", () => {
    const schedules = loadSchedules()
    expect(schedules.length).toBeGreaterThan(10)
    for (const s of schedules) {
      const text = fs.readFileSync(path.resolve(import.meta.dirname, '..', s.workflowFile), 'utf8')
      const entries = readCronEntries(text)
      expect(
        entries.map((e) => e.cron),
        s.workflowFile,
      ).toEqual(s.cron)
      expect(
        entries.map((e) => e.timezone).find((t) => t),
        s.workflowFile,
      ).toEqual(s.timezone)
    }
    const zoned = readCronEntries(
      'name: x\non:\n  workflow_dispatch:\n  schedule:\n    - cron: "0 1 * * *" # nightly\n      timezone: Europe/Berlin\n    - cron: \'30 2 * * 0\'\njobs: {}\n',
    )
    expect(zoned).toEqual([{ cron: '0 1 * * *', timezone: 'Europe/Berlin' }, { cron: '30 2 * * 0' }])
  })

  it('refuses an ADMIN_JOBS_SLOT that is not a time with exit 2, before any record', async () => {
    const result = await runInProcess(
      job(async () => ({})),
      { id: 'test/slot3', env: env({ ADMIN_JOBS_SLOT: 'yesterday' }) },
    )
    expect(result.code).toBe(2)
    expect(result.output).toContain('ADMIN_JOBS_SLOT must be an ISO time (got "yesterday")')
    expect(await runsOf('test/slot3')).toHaveLength(0)
  })
})

describe('run logs', () => {
  it('keeps every line of a run in history, from the start line to the completion line', async () => {
    const logging = defineJob({
      description: 'logs',
      timeout: '30s',
      async run({ log }) {
        log.info('step one', { rows: 3 })
        log.warn('step two was slow')
        return { rows: 3 }
      },
    })
    expect((await runInProcess(logging, { id: 'test/logs', env: env() })).code).toBe(0)
    const [run] = await runsOf('test/logs')
    const lines = (await readRunLog(db.sql, Number(run.id))).map((l) => `${l.level} ${l.text}`)
    expect(lines[0]).toMatch(/^info \[test\/logs\] starting trigger=local attempt=1/)
    expect(lines).toContain('info [test/logs] step one rows=3')
    expect(lines).toContain('warn [test/logs] step two was slow')
    expect(lines.at(-1)).toMatch(/^info \[test\/logs\] succeeded in \d+ms rows=3$/)
  })

  it('keeps at most 2,000 lines of a run and says how many it left out', async () => {
    const chatty = defineJob({
      description: 'chatty',
      timeout: '30s',
      async run({ log }) {
        for (let i = 0; i < 2_100; i++) log.info(`line ${i}`)
        return {}
      },
    })
    expect((await runInProcess(chatty, { id: 'test/chatty', env: env() })).code).toBe(0)
    const [run] = await runsOf('test/chatty')
    const lines = await readRunLog(db.sql, Number(run.id))
    expect(lines).toHaveLength(2_001)
    expect(lines.at(-1)!.text).toMatch(/^… log cut: \d+ more line\(s\) not kept \(the limit is 2000 a run\)$/)
  })
})

describe('a crash no catch reaches', () => {
  it('is still recorded as a failed run, and a critical job still alerts', async () => {
    const result = await runScript('test/fixtures/scripts/test/crash.ts', { env: env() })
    expect(result.code, result.output).toBe(1)
    expect(result.stderr).toContain("uncaught error: TypeError: Cannot read properties of null (reading 'write')")
    const [run] = await runsOf('test/crash')
    expect(run).toMatchObject({ status: 'failed' })
    expect(run.error).toContain("Cannot read properties of null (reading 'write')")
    const [alert] = await db.sql`select kind, subject from jobs.messages where incident_key = 'job:test/crash'`
    expect(alert).toMatchObject({ kind: 'alert', subject: '[critical] test/crash failed' })
  })
})
