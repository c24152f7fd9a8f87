import fs from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { migrate, migrationsDir } from '@admin-jobs/sdk/platform'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript } from './support/run.ts'
import { type SmtpCapture, startSmtp } from './support/servers.ts'

// A database that ran the jobs before reports and billing notices moved to the outbox: migrated up to the file before
// 0012_reports_billing_outbox.sql, with the ledgers those jobs kept, then migrated to the end.
let db: TestDatabase
let smtp: SmtpCapture
let dir: string

const now = '2026-11-28T06:00:00Z'

beforeAll(async () => {
  db = await createTestDatabase('ledgers', { migrate: false })
  smtp = await startSmtp()
  dir = await fs.mkdtemp(path.join(tmpdir(), 'ledgers-'))
  const earlier = path.join(dir, 'migrations')
  await fs.mkdir(earlier)
  for (const name of await fs.readdir(migrationsDir))
    if (name < '0012_') await fs.copyFile(path.join(migrationsDir, name), path.join(earlier, name))
  await migrate(db.sql, { dir: earlier })

  await db.sql`
    insert into jobs.reports (kind, period, timezone, period_start, period_end, data, markdown, deliveries, sends) values
      ('daily', '2026-11-27', 'UTC', '2026-11-27Z', '2026-11-28Z',
       '{"title": "Daily activity report", "label": "Fri, 27 Nov 2026"}', '## Daily',
       '{"email": "2026-11-28T01:13:05.123+00:00", "slack": "2026-11-28T01:13:05.456+00:00"}', 2),
      ('daily', '2026-11-26', 'UTC', '2026-11-26Z', '2026-11-27Z', '{}', '## Daily', '{}', 0)`
  const digested = '2026-11-27T06:00:00Z'
  await db.sql`
    insert into jobs.billing_changes
      (id, changed_at, entity, entity_id, action, customer, contact_email, before, after,
       notice_status, notice_attempts, notice_sent_at, notice_error, digest_sent_at)
    overriding system value values
      (1, '2026-11-27T06:00:00Z', 'license', 1, 'license.expired', 'Sent', 'sent@example.test',
       '{"product": "Pro", "seats": 5, "expires_at": "2026-11-27T00:00:00Z", "status": "active"}', '{}',
       'sent', 1, '2026-11-27T06:00:01Z', null, ${digested}),
      (2, '2026-11-27T06:00:00Z', 'license', 2, 'license.expired', 'Retrying', 'retrying@example.test',
       '{"product": "Pro", "seats": 5, "expires_at": "2026-11-27T00:00:00Z", "status": "active"}', '{}',
       'failed', 2, null, '451 try later', ${digested}),
      (3, '2026-11-27T12:00:00Z', 'license', 3, 'license.expired', 'Pending', 'pending@example.test',
       '{"product": "Team", "seats": 9, "expires_at": "2026-11-27T00:00:00Z", "status": "active"}', '{}',
       'pending', 0, null, null, null),
      (4, '2026-11-27T12:00:00Z', 'license', 4, 'license.expired', 'GivenUp', 'gone@example.test',
       '{"product": "Team", "seats": 9, "expires_at": "2026-11-27T00:00:00Z", "status": "active"}', '{}',
       'failed', 5, null, '550 no such user', null),
      (5, '2026-11-27T12:00:00Z', 'license', 5, 'license.expired', 'NoContact', null,
       '{"product": "Team", "seats": 9, "expires_at": "2026-11-27T00:00:00Z", "status": "active"}', '{}',
       'skipped', 0, null, null, null)`
  await migrate(db.sql)
})

afterAll(async () => {
  await smtp?.close()
  await fs.rm(dir, { recursive: true, force: true })
})

const env = () => ({
  DATABASE_URL: db.url,
  ADMIN_JOBS_NOW: now,
  REPORTS_DIR: path.join(dir, 'reports'),
  SMTP_URL: smtp.url,
  ALERT_EMAIL_TO: 'admins@example.test',
})

describe('moving the report and billing ledgers onto the outbox', () => {
  it('records a report a channel took as sent, so a re-run of its period sends nothing; an unsent one goes out', async () => {
    const [columns] = await db.sql`
      select count(*)::int as n from information_schema.columns
      where table_schema = 'jobs' and table_name = 'reports' and column_name in ('deliveries', 'sends')`
    expect(columns!.n).toBe(0)
    const carried = await db.sql`
      select m.subject, d.channel, d.status, d.sent_at from jobs.messages m join jobs.deliveries d on d.message_id = m.id
      where m.key = 'report:daily:2026-11-27' order by d.channel`
    expect(carried.map((r) => [r.subject, r.channel, r.status])).toEqual([
      ['Daily activity report: Fri, 27 Nov 2026', 'email', 'sent'],
      ['Daily activity report: Fri, 27 Nov 2026', 'slack', 'sent'],
    ])
    expect(carried[0]!.sent_at.toISOString()).toBe('2026-11-28T01:13:05.123Z')

    const rerun = await runScript('scripts/reports/daily.ts', { args: ['--period', '2026-11-27'], env: env() })
    expect(rerun.code, rerun.output).toBe(0)
    expect(rerun.output).toContain('already sent for this period')
    const unsent = await runScript('scripts/reports/daily.ts', { args: ['--period', '2026-11-26'], env: env() })
    expect(unsent.code, unsent.output).toBe(0)
    const reports = (await smtp.waitFor(1)).filter((m) => m.subject?.startsWith('Daily'))
    expect(reports.map((m) => m.subject)).toEqual(['Daily activity report: Thu, 26 Nov 2026'])
  })

  it('keeps notices sent or given up from going again, queues the ones still due, and digests only what no digest listed', async () => {
    smtp.messages.length = 0
    const result = await runScript('scripts/billing/licenses.ts', { env: env() })
    expect(result.code, result.output).toBe(0)
    await smtp.waitFor(3)
    await new Promise((r) => setTimeout(r, 300))
    const to = (m: (typeof smtp.messages)[number]) => (m.to && 'text' in m.to ? m.to.text : '')
    expect(smtp.messages.map(to).sort()).toEqual([
      'admins@example.test',
      'pending@example.test',
      'retrying@example.test',
    ])
    const digest = smtp.messages.find((m) => to(m) === 'admins@example.test')!
    // Changes 1 and 2 were in the digest sent before; 3, 4 and 5 were not.
    expect(digest.subject).toBe('Billing: 3 license/subscription changes')
    expect(digest.text).toContain('license 3 (Team) of Pending')
    expect(digest.text).not.toContain('of Sent')
    const [run] = await db.sql`select stats from jobs.runs where job = 'billing/licenses' order by id desc limit 1`
    expect(run!.stats).toMatchObject({ earlierNotices: 2, noticesQueued: 2, digestChanges: 3 })

    const again = await runScript('scripts/billing/licenses.ts', { env: env() })
    expect(again.code, again.output).toBe(0)
    await new Promise((r) => setTimeout(r, 300))
    expect(smtp.messages).toHaveLength(3)
    const links = await db.sql`
      select id::int, notice_message_id is not null as notice, digest_message_id is not null as digested
      from jobs.billing_changes order by id`
    expect(links.map((l) => [l.id, l.notice, l.digested])).toEqual([
      [1, true, true],
      [2, true, true],
      [3, true, true],
      [4, true, true],
      [5, false, true],
    ])
  })
})
