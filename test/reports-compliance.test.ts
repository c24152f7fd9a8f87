import { seedDemo } from '@admin-jobs/sdk/platform'
import { beforeAll, describe, expect, it } from 'vitest'
import { boundsOf, buildMonthlyReport, type JobReliability, renderText, resolvePeriod } from '#reports'
import { createTestDatabase, type TestDatabase } from './support/db.ts'

let db: TestDatabase
const now = new Date('2026-12-01T04:00:00Z')
const november = () => boundsOf(db.sql, resolvePeriod('monthly', { now, timezone: 'UTC' }))
const reliabilityOf = async (exempt?: ReadonlySet<string>) => {
  const doc = await buildMonthlyReport(db.sql, await november(), { retentionDays: 90, now, exemptFromPauseAll: exempt })
  const jobs = new Map((doc.data.jobs as JobReliability[]).map((j) => [j.job, j]))
  return { doc, jobs }
}

beforeAll(async () => {
  db = await createTestDatabase('reports_compliance')
  await seedDemo(db.sql, { now })
})

describe('the compliance report counts only the runs that were expected', () => {
  it('after seed-demo, with no run history, expects no run of any job and invents no miss', async () => {
    const { doc, jobs } = await reliabilityOf()
    expect(jobs.size).toBeGreaterThanOrEqual(13)
    for (const j of jobs.values()) expect(j).toMatchObject({ expected: 0, missed: 0, expectedFrom: null })
    expect(doc.findings!.some((f) => f.text.includes('missed'))).toBe(false)
    expect(doc.headline.find((m) => m.key === 'missed_runs')?.value).toBe(0)
    expect(renderText(doc)).toContain('not yet deployed')
  })

  it('expects runs of a job only from the fire time its first run served, mid-month', async () => {
    // cleanup/sessions fires at :07 every 6 hours. First run 16 Nov 06:08; every fire time from then is served
    // except 20 Nov 12:07.
    await db.sql`
      insert into jobs.runs (job, status, trigger, started_at, finished_at)
      select 'cleanup/sessions', 'succeeded', 'schedule', t + interval '1 minute', t + interval '2 minutes'
      from generate_series('2026-11-16T06:07Z'::timestamptz, '2026-11-30T18:07Z', '6 hours') t
      where t <> '2026-11-20T12:07Z'`
    const { doc, jobs } = await reliabilityOf()
    // 16 Nov 06:07 to 30 Nov 18:07: 59 fire times.
    expect(jobs.get('cleanup/sessions')).toMatchObject({
      runs: 58,
      expected: 59,
      missed: 1,
      paused: 0,
      expectedFrom: '2026-11-16T06:07:00.000Z',
    })
    expect(renderText(doc)).toMatch(/cleanup\/sessions +58 +0 +0 +2026-11-16 06:07 +59 +0 +1\n/)
  })

  it('expects a job from when the watchdog first saw it, when that is before its first run', async () => {
    // The watchdog saw reports/weekly on 10 Nov; it fires Sundays 02:23 (15, 22, 29 Nov); only the 29th ran.
    await db.sql`
      insert into jobs.job_state (job, key, value)
      values ('monitoring/watchdog', 'firstSeen', ${db.sql.json({ 'reports/weekly': '2026-11-10T00:00:00.000Z' })})`
    await db.sql`
      insert into jobs.runs (job, status, trigger, started_at, finished_at)
      values ('reports/weekly', 'succeeded', 'schedule', '2026-11-29T02:25Z', '2026-11-29T02:26Z')`
    const { jobs } = await reliabilityOf()
    expect(jobs.get('reports/weekly')).toMatchObject({
      runs: 1,
      expected: 3,
      missed: 2,
      expectedFrom: '2026-11-10T00:00:00.000Z',
    })
  })

  it('expects nothing while a pause held the job, and a job exempt from pause-all keeps its fire times', async () => {
    // A pause of every job on 20 Nov from 00:00, resumed at 12:00 (it was meant to last a day).
    await db.sql`
      insert into jobs.pauses (target, reason, paused_until, created_at, resumed_at)
      values ('all', 'maintenance', '2026-11-21T00:00Z', '2026-11-20T00:00Z', '2026-11-20T12:00Z')`
    // monitoring/health-check (every 5 minutes at :02, :07 …) ran every fire time from 10 Nov, except in the pause.
    await db.sql`
      insert into jobs.runs (job, status, trigger, started_at, finished_at)
      select 'monitoring/health-check', 'succeeded', 'schedule', t + interval '20 seconds', t + interval '30 seconds'
      from generate_series('2026-11-10T00:02Z'::timestamptz, '2026-11-30T23:57Z', '5 minutes') t
      where not (t >= '2026-11-20T00:00Z' and t < '2026-11-20T12:00Z')`
    // notifications/security-alerts ran every 15 minutes from 10 Nov, pause or not, bar one fire time in the pause.
    await db.sql`
      insert into jobs.runs (job, status, trigger, started_at, finished_at)
      select 'notifications/security-alerts', 'succeeded', 'schedule', t + interval '30 seconds', t + interval '40 seconds'
      from generate_series('2026-11-10T00:03Z'::timestamptz, '2026-11-30T23:48Z', '15 minutes') t
      where t <> '2026-11-20T06:03Z'`
    const { doc, jobs } = await reliabilityOf(new Set(['notifications/security-alerts']))
    const health = jobs.get('monitoring/health-check')!
    // 21 days × 288 fire times, 144 of them in the 12-hour pause.
    expect(health).toMatchObject({ expected: 21 * 288 - 144, paused: 144, missed: 0 })
    // cleanup/sessions: 20 Nov 00:07 and 06:07 fell in the pause; 12:07 (its one miss) did not.
    expect(jobs.get('cleanup/sessions')).toMatchObject({ expected: 57, paused: 2, missed: 1 })
    const alerts = jobs.get('notifications/security-alerts')!
    // 21 days × 96 fire times, none left out for the pause.
    expect(alerts).toMatchObject({ expected: 21 * 96, paused: 0, missed: 1 })
    expect(doc.findings!.some((f) => f.text.startsWith('monitoring/health-check missed'))).toBe(false)
  })

  it('treats an open-ended pause and unbounded times in the data without failing or inventing figures', async () => {
    await db.sql`
      insert into jobs.pauses (target, reason, paused_until, created_at)
      values ('reports/weekly', 'retired for now', 'infinity', '2026-11-25T00:00Z')`
    await db.sql`
      insert into users (id, email, role, mfa_enabled, last_login_at) values (90001, 'forever.admin@demo.example', 'admin', true, '-infinity')`
    await db.sql`
      insert into credentials (id, owner_id, kind, name, expires_at) values (90001, 90001, 'api_key', 'ancient', '-infinity')`
    const { doc, jobs } = await reliabilityOf()
    // The Sunday 29 Nov fire time is held by the pause: only 15 and 22 Nov are expected, both missed.
    expect(jobs.get('reports/weekly')).toMatchObject({ expected: 2, paused: 1, missed: 2 })
    const findings = doc.findings!.map((f) => f.text)
    expect(findings).toContain('Review dormant admin forever.admin@demo.example (last login never)')
    expect(findings).toContain('Revoke expired api_key "ancient" (expired unbounded)')
  })

  it('says beside every headline figure how it was computed', async () => {
    const { doc } = await reliabilityOf()
    for (const m of doc.headline) expect(m.note, m.key).toMatch(/\w{3,}/)
    const reliability = doc.sections.find((s) => s.title === 'Job reliability')!
    expect(reliability.note).toContain('first run')
    expect(reliability.note).toContain('pause')
    expect(renderText(doc)).toMatch(/\nLogins +[\d,]+ +auth\.login audit events in the period\n/)
  })
})
