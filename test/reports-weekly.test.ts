import fs from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { boundsOf, buildWeeklyReport, renderMarkdown, resolvePeriod } from '#reports'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript } from './support/run.ts'
import { type HttpCapture, startHttp } from './support/servers.ts'

let db: TestDatabase
let slack: HttpCapture
let reportsDir: string

beforeAll(async () => {
  db = await createTestDatabase('reports_weekly')
  slack = await startHttp()
  reportsDir = await fs.mkdtemp(path.join(tmpdir(), 'reports-weekly-'))
  await db.sql`
    insert into users (id, email, role, created_at) values
      (1, 'a@example.com', 'admin', '2025-01-01Z'),
      (2, 'o@example.com', 'owner', '2025-01-01Z'),
      (3, 'u@example.com', 'user', '2025-01-01Z'),
      (4, 'new@example.com', 'user', '2026-11-17T08:00:00Z'),
      (5, 'old@example.com', 'user', '2026-11-10T08:00:00Z')`
  await db.sql`
    insert into audit_logs (occurred_at, actor_id, action, target_id) values
      ('2026-11-16T09:00:00Z', 1, 'auth.login', null),
      ('2026-11-16T09:30:00Z', 3, 'auth.login', null),
      ('2026-11-16T22:00:00Z', null, 'auth.login_failed', null),
      ('2026-11-17T09:15:00Z', 1, 'auth.login', null),
      ('2026-11-17T14:00:00Z', 2, 'auth.login', null),
      ('2026-11-17T14:05:00Z', 2, 'data.export', null),
      ('2026-11-22T10:00:00Z', 2, 'user.role_changed', '3'),
      ('2026-11-22T23:30:00Z', 3, 'auth.login', null),
      ('2026-11-10T09:00:00Z', 1, 'auth.login', null),
      ('2026-11-10T10:00:00Z', 3, 'auth.login', null),
      ('2026-11-10T11:00:00Z', null, 'auth.login_failed', null),
      ('2026-11-10T11:00:00Z', null, 'auth.login_failed', null),
      ('2026-11-13T09:00:00Z', 3, 'auth.login', null),
      ('2026-11-23T00:00:00Z', 3, 'auth.login', null)`
  await db.sql`
    insert into jobs.messages (created_at, job, kind, severity, title, subject, text, message_id) values
      ('2026-11-18T03:00:00Z', 'notifications/security-alerts', 'alert', 'critical', 'Brute force', '[critical] Brute force', '', '<w1@test>'),
      ('2026-11-18T04:00:00Z', 'notifications/security-alerts', 'reminder', 'critical', 'Brute force', '[critical] Brute force', '', '<w2@test>'),
      ('2026-11-12T03:00:00Z', 'notifications/security-alerts', 'alert', 'critical', 'Brute force', '[critical] Brute force', '', '<w3@test>')`
})

afterAll(async () => {
  await slack?.close()
  await fs.rm(reportsDir, { recursive: true, force: true })
})

const week = (timezone: string) =>
  boundsOf(db.sql, resolvePeriod('weekly', { now: new Date('2026-11-23T02:23:00Z'), timezone }))

describe('reports/weekly', () => {
  it('totals the week, compares it with the week before, and counts distinct users per week, not per day', async () => {
    const doc = await buildWeeklyReport(db.sql, await week('UTC'))
    expect(doc.bounds.key).toBe('2026-11-16')
    expect(doc.headline.map((m) => [m.key, m.value, m.previous])).toEqual([
      ['logins', 5, 3],
      ['active_users', 3, 2],
      ['new_users', 1, 1],
      ['failed_logins', 1, 2],
      ['role_changes', 1, 0],
      ['exports', 1, 0],
      ['security_alerts', 1, 1],
    ])
    const days = doc.data.days as { day: string; logins: number; activeUsers: number }[]
    expect(days.map((d) => d.day)).toEqual([
      '2026-11-16',
      '2026-11-17',
      '2026-11-18',
      '2026-11-19',
      '2026-11-20',
      '2026-11-21',
      '2026-11-22',
    ])
    expect(days.map((d) => d.logins)).toEqual([2, 2, 0, 0, 0, 0, 1])
    expect(days.map((d) => d.activeUsers)).toEqual([2, 2, 0, 0, 0, 0, 2])
    expect(doc.data.mostActiveAdmins).toEqual([
      { id: '2', email: 'o@example.com', role: 'owner', events: 3, logins: 1 },
      { id: '1', email: 'a@example.com', role: 'admin', events: 2, logins: 2 },
    ])
    expect(doc.data.busiestHours).toEqual([
      { hour: 9, events: 3 },
      { hour: 14, events: 2 },
      { hour: 10, events: 1 },
      { hour: 22, events: 1 },
      { hour: 23, events: 1 },
    ])
    expect(doc.chart?.labels).toEqual(['Mon 16', 'Tue 17', 'Wed 18', 'Thu 19', 'Fri 20', 'Sat 21', 'Sun 22'])
    const markdown = renderMarkdown(doc)
    expect(markdown).toContain('| Logins | 5 | 3 | +66.7% |')
    expect(markdown).toContain('| Role changes | 1 | 0 | new |')
  })

  it('takes Monday to Sunday in REPORT_TIMEZONE', async () => {
    const tokyo = await week('Asia/Tokyo')
    expect(tokyo.from.toISOString()).toBe('2026-11-15T15:00:00.000Z')
    const doc = await buildWeeklyReport(db.sql, tokyo)
    // 23:30Z on Sunday the 22nd is Monday morning in Tokyo: next week.
    expect(doc.headline[0]).toMatchObject({ key: 'logins', value: 4 })
    expect((doc.data.busiestHours as { hour: number }[])[0]).toEqual({ hour: 18, events: 3 })
  })

  it('posts the headline numbers with week-over-week change to Slack', async () => {
    const result = await runScript('scripts/reports/weekly.ts', {
      env: {
        DATABASE_URL: db.url,
        ADMIN_JOBS_NOW: '2026-11-23T02:23:00Z',
        REPORTS_DIR: reportsDir,
        SLACK_WEBHOOK_URL: slack.url,
      },
    })
    expect(result.code, result.output).toBe(0)
    const [post] = await slack.waitFor(1)
    expect(post.json().text).toContain('Weekly analytics report: 16 Nov – 22 Nov 2026\nLogins: 5 (+66.7%)\n')
    expect(post.json().text).toContain('Failed logins: 1 (-50%)')
    const csv = await fs.readFile(path.join(reportsDir, 'weekly', 'weekly-2026-11-16.csv'), 'utf8')
    expect(csv).toContain('metric,value,previous,change_percent\r\nlogins,5,3,66.7\r\nactive_users,3,2,50\r\n')
  })
})
