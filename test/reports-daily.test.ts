import fs from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createLogger, createNotifier, parseConfig } from '@admin-jobs/sdk/platform'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  boundsOf,
  buildDailyReport,
  renderCsv,
  renderHtml,
  renderMarkdown,
  reportDelivery,
  resolvePeriod,
  storeReport,
} from '#reports'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript } from './support/run.ts'
import { type HttpCapture, type SmtpCapture, startHttp, startSmtp } from './support/servers.ts'

let db: TestDatabase
let smtp: SmtpCapture
let slack: HttpCapture
let reportsDir: string

beforeAll(async () => {
  db = await createTestDatabase('reports_daily')
  ;[smtp, slack] = await Promise.all([startSmtp(), startHttp()])
  reportsDir = await fs.mkdtemp(path.join(tmpdir(), 'reports-daily-'))
  await db.sql`
    insert into users (id, email, role, created_at) values
      (1, 'owner@example.com', 'owner', '2025-01-01Z'),
      (2, 'ada@example.com', 'admin', '2026-11-27T05:00:00Z'),
      (3, 'bob@example.com', 'user', '2026-11-27T06:00:00Z'),
      (4, 'eve@example.com', 'user', '2026-11-26T12:00:00Z')`
  await db.sql`
    insert into audit_logs (occurred_at, actor_id, action, ip, target_id, metadata) values
      ('2026-11-26T23:59:59Z', 4, 'auth.login', '10.0.0.4', null, '{}'),
      ('2026-11-27T00:00:00Z', 1, 'auth.login', '10.0.0.1', null, '{}'),
      ('2026-11-27T09:00:00Z', 3, 'auth.login', '10.0.0.3', null, '{}'),
      ('2026-11-27T10:00:00Z', 3, 'auth.login', '10.0.0.3', null, '{}'),
      ('2026-11-27T09:30:00Z', null, 'auth.login_failed', '10.0.0.9', null, '{"email": "a@x.io"}'),
      ('2026-11-27T09:31:00Z', null, 'auth.login_failed', '10.0.0.9', null, '{"email": "b@x.io"}'),
      ('2026-11-27T09:32:00Z', null, 'auth.login_failed', '10.0.0.9', null, '{"email": "a@x.io"}'),
      ('2026-11-27T20:00:00Z', null, 'auth.login_failed', '10.0.0.8', null, '{"email": "a@x.io"}'),
      ('2026-11-27T11:00:00Z', 1, 'user.role_changed', '10.0.0.1', '2', '{"from": "user", "to": "admin"}'),
      ('2026-11-27T12:00:00Z', 1, 'data.export', '10.0.0.1', null, '{"rows": 1500}'),
      ('2026-11-27T13:00:00Z', 2, 'data.export', '10.0.0.2', null, '{"rows": "lots"}'),
      ('2026-11-28T00:00:00Z', 4, 'auth.login', '10.0.0.4', null, '{}')`
  // Alerts as the outbox keeps them: an alert, its reminder (not counted), another job's alert, one the next day.
  await db.sql`
    insert into jobs.messages (created_at, job, kind, severity, title, subject, text, message_id)
    select t.at::timestamptz, t.job, t.kind, t.severity, t.title, '[' || t.severity || '] ' || t.title, '', gen_random_uuid()::text
    from (values
      ('2026-11-27T03:00:00Z', 'notifications/security-alerts', 'alert', 'critical', 'Brute force from 10.0.0.9'),
      ('2026-11-27T04:00:00Z', 'notifications/security-alerts', 'reminder', 'critical', 'Brute force from 10.0.0.9'),
      ('2026-11-27T05:00:00Z', 'backups/database', 'alert', 'critical', 'backups/database failed'),
      ('2026-11-28T05:00:00Z', 'notifications/security-alerts', 'alert', 'warning', 'Later')
    ) t(at, job, kind, severity, title)`
  await db.sql`
    insert into jobs.runs (job, status, trigger, started_at, finished_at) values
      ('cleanup/sessions', 'succeeded', 'schedule', '2026-11-27T00:07:00Z', '2026-11-27T00:08:00Z'),
      ('cleanup/sessions', 'succeeded', 'schedule', '2026-11-27T06:07:00Z', '2026-11-27T06:08:00Z'),
      ('cleanup/sessions', 'failed', 'schedule', '2026-11-27T12:07:00Z', '2026-11-27T12:08:00Z'),
      ('cleanup/sessions', 'skipped', 'schedule', '2026-11-27T18:07:00Z', '2026-11-27T18:07:00Z'),
      ('cleanup/sessions', 'timed_out', 'schedule', '2026-11-26T18:07:00Z', '2026-11-26T18:30:00Z')`
})

afterAll(async () => {
  await Promise.all([smtp?.close(), slack?.close()])
  await fs.rm(reportsDir, { recursive: true, force: true })
})

const day = (timezone: string, requested = '2026-11-27') =>
  boundsOf(db.sql, resolvePeriod('daily', { now: new Date('2026-12-01Z'), timezone, requested }))

describe('reports/daily figures', () => {
  it('counts the seeded day exactly, excluding both neighbours', async () => {
    const doc = await buildDailyReport(db.sql, await day('UTC'))
    expect(Object.fromEntries(doc.headline.map((m) => [m.key, m.value]))).toEqual({
      logins: 3,
      active_users: 3,
      new_users: 2,
      failed_logins: 4,
      role_changes: 1,
      exports: 2,
      security_alerts: 1,
      job_failures: 1,
    })
    expect(doc.data).toMatchObject({
      exportedRows: 1500,
      alerts: 2,
      topFailedIps: [
        { ip: '10.0.0.9', attempts: 3, emails: 2 },
        { ip: '10.0.0.8', attempts: 1, emails: 1 },
      ],
      topActions: [
        { action: 'auth.login_failed', events: 4 },
        { action: 'auth.login', events: 3 },
        { action: 'data.export', events: 2 },
        { action: 'user.role_changed', events: 1 },
      ],
      roleChanges: [{ actor: 'owner@example.com', target: 'ada@example.com', from: 'user', to: 'admin' }],
    })
    const runs = (doc.data.jobs as { job: string }[]).find((j) => j.job === 'cleanup/sessions')
    expect(runs).toEqual({ job: 'cleanup/sessions', runs: 4, succeeded: 2, failed: 1, skipped: 1, other: 0 })
    expect((doc.data.loginsByHour as number[])[9]).toBe(1)
  })

  it('moves the day boundary with REPORT_TIMEZONE (Asia/Tokyo, America/New_York)', async () => {
    const tokyo = await day('Asia/Tokyo')
    expect([tokyo.from.toISOString(), tokyo.to.toISOString()]).toEqual([
      '2026-11-26T15:00:00.000Z',
      '2026-11-27T15:00:00.000Z',
    ])
    const tokyoDoc = await buildDailyReport(db.sql, tokyo)
    // 23:59:59Z on the 26th is 08:59 on the 27th in Tokyo; 20:00Z on the 27th is already the 28th.
    expect(tokyoDoc.headline.find((m) => m.key === 'logins')?.value).toBe(4)
    expect(tokyoDoc.headline.find((m) => m.key === 'failed_logins')?.value).toBe(3)
    const newYork = await buildDailyReport(db.sql, await day('America/New_York'))
    // New York's 27th runs 05:00Z to 05:00Z: it drops midnight UTC and gains midnight UTC of the 28th.
    expect(newYork.headline.find((m) => m.key === 'logins')?.value).toBe(3)
    expect((newYork.data.loginsByHour as number[])[19]).toBe(1)
  })

  it('spans 25 hours on the day daylight saving time ends', async () => {
    const fallBack = await day('America/New_York', '2026-11-01')
    expect(fallBack.to.getTime() - fallBack.from.getTime()).toBe(25 * 3_600_000)
  })

  it('lists the ten busiest of twelve actions, ties by name, and counts every event and actor of the day', async () => {
    // event.01 … event.12 with 2, 3, 1, 2, 3, 1 … events; actors 1 and 2, and some events without an actor.
    await db.sql`
      insert into audit_logs (occurred_at, actor_id, action, metadata)
      select timestamptz '2026-11-10T08:00:00Z' + n * interval '1 minute',
        case when n % 3 = 0 then null else 1 + k % 2 end, 'event.' || lpad(k::text, 2, '0'), '{}'
      from generate_series(1, 12) k, generate_series(1, 1 + k % 3) n`
    const doc = await buildDailyReport(db.sql, await day('UTC', '2026-11-10'))
    expect((doc.data.topActions as { action: string; events: number }[]).map((r) => `${r.action}:${r.events}`)).toEqual(
      [
        'event.02:3',
        'event.05:3',
        'event.08:3',
        'event.11:3',
        'event.01:2',
        'event.04:2',
        'event.07:2',
        'event.10:2',
        'event.03:1',
        'event.06:1',
      ],
    )
    expect(doc.data).toMatchObject({ events: 24, activeUsers: 2, logins: 0, exports: 0, exportedRows: 0 })
  })

  it('renders an empty day cleanly in every format', async () => {
    const doc = await buildDailyReport(db.sql, await day('UTC', '2026-10-01'))
    expect(doc.headline.every((m) => m.value === 0 || m.key === 'job_failures')).toBe(true)
    const markdown = renderMarkdown(doc)
    expect(markdown).toContain('_No failed logins._')
    expect(markdown).toContain('_No role changes._')
    expect(markdown).not.toMatch(/undefined|NaN|null/)
    expect(renderHtml(doc, { chartCid: 'c' })).not.toMatch(/undefined|NaN/)
    expect(renderCsv(doc).split('\r\n').slice(0, 3)).toEqual(['metric,value', 'logins,0', 'active_users,0'])
  })

  it('stores and queues a period once however many runs store it at once, and counts every generation', async () => {
    const bounds = await day('UTC', '2026-11-20')
    const notify = createNotifier({
      sql: db.sql,
      config: parseConfig({ DATABASE_URL: db.url, SMTP_URL: smtp.url, ALERT_EMAIL_TO: 'ops@example.com' }),
      log: createLogger({ scope: 'test', write: () => {} }),
      job: 'reports/daily',
    })
    const notice = { kind: 'report', key: 'report:daily:2026-11-20', subject: 'Daily', text: 'figures' }
    const stored = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        storeReport(db.sql, notify, { bounds, data: { i }, markdown: '', runId: i + 1, notice }),
      ),
    )
    expect(stored.map((s) => s.generations).sort()).toEqual([1, 2, 3, 4, 5, 6])
    expect(stored.filter((s) => s.queued?.queued)).toHaveLength(1)
    expect(await db.sql`select 1 from jobs.messages where key = 'report:daily:2026-11-20'`).toHaveLength(1)
    expect(await reportDelivery(db.sql, 'report:daily:2026-11-20')).toMatchObject({
      delivered: false,
      channels: [{ channel: 'email', status: 'pending', attempts: 0 }],
    })
    await db.sql`delete from jobs.messages where key = 'report:daily:2026-11-20'`
  })
})

describe('reports/daily delivery', () => {
  const env = (summary: string) => ({
    DATABASE_URL: db.url,
    ADMIN_JOBS_NOW: '2026-11-28T01:13:00Z',
    REPORTS_DIR: reportsDir,
    SMTP_URL: smtp.url,
    ALERT_EMAIL_TO: 'ops@example.com',
    SLACK_WEBHOOK_URL: `${slack.url}/hook`,
    GITHUB_ACTIONS: 'true',
    GITHUB_REPOSITORY: 'acme/admin',
    GITHUB_RUN_ID: '42',
    GITHUB_STEP_SUMMARY: summary,
  })

  it('sends once per period: email with inline chart and CSV, Slack, files, summary; re-runs store; --force sends a copy', async () => {
    const summary = path.join(reportsDir, 'summary.md')
    await fs.writeFile(summary, '')
    const first = await runScript('scripts/reports/daily.ts', { env: env(summary) })
    expect(first.code, first.output).toBe(0)

    const [mail] = await smtp.waitFor(1)
    expect(mail.subject).toBe('Daily activity report: Fri, 27 Nov 2026')
    expect(mail.to && 'text' in mail.to ? mail.to.text : '').toBe('ops@example.com')
    expect(mail.html).toMatch(/<img src="(cid:chart@admin-jobs|data:image\/png;base64,[^"]+)" width="600" height="300"/)
    expect(mail.html).toMatch(/<td style="[^"]*">10\.0\.0\.9<\/td>/)
    expect(mail.html).not.toMatch(/<svg|src="https?:/)
    const image = mail.attachments.find((a) => a.contentType === 'image/png')
    expect(image?.cid).toBe('chart@admin-jobs')
    expect(image?.contentDisposition).toBe('inline')
    expect(image?.content.subarray(1, 4).toString()).toBe('PNG')
    // Twice the <img> size, for high-density screens (IHDR width and height).
    expect([image?.content.readUInt32BE(16), image?.content.readUInt32BE(20)]).toEqual([1200, 600])
    const csv = mail.attachments.find((a) => a.filename === 'daily-2026-11-27.csv')
    expect(csv?.contentType).toBe('text/csv')
    const csvText = csv!.content.toString()
    expect(csvText).toContain('logins,3\r\nactive_users,3\r\nnew_users,2\r\nfailed_logins,4\r\n')
    expect(csvText).toContain(
      'Failed logins by source IP\r\nIP,Attempts,Accounts tried\r\n10.0.0.9,3,2\r\n10.0.0.8,1,1',
    )
    expect(mail.text).toContain('Run: https://github.com/acme/admin/actions/runs/42/attempts/1')

    const [post] = await slack.waitFor(1)
    const body = post.json()
    expect(post.url).toBe('/hook')
    expect(body.text).toContain('Logins: 3')
    expect(body.text).toContain('Security alerts raised: 1')
    expect(body.blocks[1].fields[3]).toEqual({ type: 'mrkdwn', text: '*Failed logins*\n4' })
    expect(body.blocks[2].elements[0].text).toContain('<https://github.com/acme/admin/actions/runs/42/attempts/1|Run>')

    const files = (await fs.readdir(path.join(reportsDir, 'daily'))).sort()
    expect(files).toEqual([
      'daily-2026-11-27.csv',
      'daily-2026-11-27.json',
      'daily-2026-11-27.md',
      'daily-2026-11-27.png',
    ])
    const json = JSON.parse(await fs.readFile(path.join(reportsDir, 'daily', 'daily-2026-11-27.json'), 'utf8'))
    expect(json).toMatchObject({ kind: 'daily', period: '2026-11-27', from: '2026-11-27T00:00:00.000Z' })
    expect(json.data.logins).toBe(3)
    const markdown = await fs.readFile(summary, 'utf8')
    expect(markdown).toContain('## Daily activity report: Fri, 27 Nov 2026')
    expect(markdown).toContain('```mermaid\nxychart-beta')

    // A re-run (Actions re-run, or the schedule firing twice) regenerates and stores, and sends nothing.
    await db.sql`insert into audit_logs (occurred_at, actor_id, action) values ('2026-11-27T15:00:00Z', 4, 'auth.login')`
    const second = await runScript('scripts/reports/daily.ts', { env: env(summary) })
    expect(second.code, second.output).toBe(0)
    expect(second.output).toContain('already sent for this period')
    const [stored] = await db.sql`select * from jobs.reports where kind = 'daily' and period = '2026-11-27'`
    expect(stored.generations).toBe(2)
    expect(stored.data.data.logins).toBe(4)
    const delivery = await reportDelivery(db.sql, 'report:daily:2026-11-27')
    expect(delivery?.channels.map((d) => [d.channel, d.status, d.attempts])).toEqual([
      ['email', 'sent', 1],
      ['slack', 'sent', 1],
    ])
    const [{ message_id }] = await db.sql`select message_id from jobs.messages where key = 'report:daily:2026-11-27'`
    expect(mail.messageId).toBe(message_id)

    const forced = await runScript('scripts/reports/daily.ts', {
      args: ['--force', '--period', '2026-11-27'],
      env: env(summary),
    })
    expect(forced.code, forced.output).toBe(0)
    await smtp.waitFor(2)
    await slack.waitFor(2)
    await new Promise((r) => setTimeout(r, 300))
    expect([smtp.messages.length, slack.requests.length]).toEqual([2, 2])
    expect(slack.requests[1].json().text).toContain('Logins: 4')
    expect(smtp.messages[1].messageId).not.toBe(mail.messageId)
    const [after] = await db.sql`select generations from jobs.reports where kind = 'daily' and period = '2026-11-27'`
    expect(after).toEqual({ generations: 3 })
    const copies = await db.sql`select key from jobs.messages where key like 'report:daily:2026-11-27%' order by id`
    expect(copies.map((c) => c.key)).toEqual(['report:daily:2026-11-27', expect.stringMatching(/:forced:\d+$/)])
  })

  it('stores, writes and sends nothing in a dry run', async () => {
    const dry = await runScript('scripts/reports/daily.ts', {
      args: ['--dry-run', '--period', '2026-11-25'],
      env: {
        DATABASE_URL: db.url,
        ADMIN_JOBS_NOW: '2026-11-28T01:13:00Z',
        REPORTS_DIR: reportsDir,
        SMTP_URL: smtp.url,
        ALERT_EMAIL_TO: 'ops@example.com',
      },
    })
    expect(dry.code, dry.output).toBe(0)
    expect(dry.output).toContain('dry run: would store the report')
    expect(await db.sql`select 1 from jobs.reports where period = '2026-11-25'`).toHaveLength(0)
    await expect(fs.stat(path.join(reportsDir, 'daily', 'daily-2026-11-25.json'))).rejects.toThrow()
    expect(await db.sql`select 1 from jobs.messages where key like 'report:daily:2026-11-25%'`).toHaveLength(0)
  })
})
