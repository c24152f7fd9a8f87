import fs from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { boundsOf, buildMonthlyReport, renderMarkdown, resolvePeriod } from '#reports'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript } from './support/run.ts'

let db: TestDatabase
let reportsDir: string
const now = new Date('2026-12-01T04:00:00Z')

beforeAll(async () => {
  db = await createTestDatabase('reports_monthly')
  reportsDir = await fs.mkdtemp(path.join(tmpdir(), 'reports-monthly-'))
  // The backups job's tables come from a later migration; this file decides whether they exist.
  await db.sql`drop table if exists jobs.backups, jobs.backup_runs, jobs.backup_verifications, jobs.restore_verifications, jobs.restore_checks cascade`
  await db.sql`
    insert into users (id, email, role, mfa_enabled, last_login_at, disabled_at) values
      (1, 'owner@example.com', 'owner', true, '2026-11-20Z', null),
      (2, 'nomfa@example.com', 'admin', false, '2026-11-25Z', null),
      (3, 'dormant@example.com', 'admin', true, '2026-08-01Z', null),
      (4, 'gone@example.com', 'admin', false, null, '2026-10-01Z'),
      (5, 'user@example.com', 'user', false, '2026-11-29Z', null)`
  await db.sql`
    insert into audit_logs (occurred_at, actor_id, action, target_id, metadata) values
      ('2026-07-01T00:00:00Z', 5, 'auth.login', null, '{}'),
      ('2026-10-31T23:00:00Z', 1, 'user.role_changed', '5', '{"from": "user", "to": "admin"}'),
      ('2026-11-02T10:00:00Z', 1, 'user.role_changed', '2', '{"from": "user", "to": "admin"}'),
      ('2026-11-03T10:00:00Z', 1, 'user.role_changed', '4', '{"from": "admin", "to": "user"}'),
      ('2026-11-04T10:00:00Z', 2, 'auth.mfa_disabled', '2', '{}'),
      ('2026-11-05T10:00:00Z', 1, 'license.updated', '7', '{"customer": "Initech"}'),
      ('2026-11-06T10:00:00Z', 5, 'auth.login', null, '{}'),
      ('2026-11-06T11:00:00Z', null, 'auth.login_failed', null, '{}')`
  await db.sql`
    insert into credentials (id, owner_id, kind, name, expires_at, revoked_at) values
      (1, 1, 'api_key', 'k1', '2026-11-10Z', null),
      (2, 1, 'api_key', 'k2', '2026-11-05Z', '2026-11-06Z'),
      (3, 2, 'ssh_key', 'k3', '2026-11-15Z', '2026-12-05Z'),
      (4, 2, 'tls_certificate', 'k4', '2026-12-20Z', null),
      (5, 2, 'api_key', 'k5', '2027-02-01Z', null),
      (6, 2, 'api_key', 'k6', '2026-12-10Z', '2026-11-20Z')`
  await db.sql`
    insert into licenses (id, customer, product, seats, seats_used, expires_at, status) values
      (1, 'Acme', 'Pro', 10, 5, '2026-11-15Z', 'expired'),
      (2, 'Globex', 'Team', 10, 12, '2027-06-01Z', 'active'),
      (3, 'Hooli', 'Pro', 10, 10, '2027-06-01Z', 'active')`
  await db.sql`
    insert into subscriptions (id, customer, plan, status, current_period_end, cancel_at_period_end) values
      (1, 'Acme', 'monthly', 'canceled', '2026-11-20Z', false),
      (2, 'Globex', 'annual', 'active', '2026-11-30Z', true),
      (3, 'Hooli', 'annual', 'active', '2026-11-25Z', false)`
  // reports/daily fires at 01:13 UTC: 30 slots in November; runs on the 1st to the 28th, one failed.
  await db.sql`
    insert into jobs.runs (job, status, trigger, started_at, finished_at)
    select 'reports/daily', case when d = '2026-11-05' then 'failed' else 'succeeded' end, 'schedule',
      d + interval '1 hour 14 minutes', d + interval '1 hour 15 minutes'
    from generate_series('2026-11-01'::timestamptz, '2026-11-28', '1 day') d`
})

afterAll(async () => {
  await fs.rm(reportsDir, { recursive: true, force: true })
})

const november = () => boundsOf(db.sql, resolvePeriod('monthly', { now, timezone: 'UTC' }))

describe('reports/monthly', () => {
  it('lists admins, privilege changes, credentials, billing changes and retention exactly', async () => {
    const doc = await buildMonthlyReport(db.sql, await november(), { retentionDays: 90, now })
    const figures = Object.fromEntries(doc.headline.map((m) => [m.key, m.value]))
    expect(figures).toMatchObject({
      admins: 4,
      admins_without_mfa: 1,
      dormant_admins: 1,
      privilege_changes: 2,
      expired_credentials: 2,
      expiring_credentials: 1,
      backups_taken: 0,
      logins: 1,
      failed_logins: 1,
    })
    expect(doc.data.dormantAdmins).toEqual(['dormant@example.com'])
    expect(doc.data.adminsWithoutMfa).toEqual(['nomfa@example.com'])
    expect((doc.data.privilegeChanges as { action: string; change: string | null }[]).map((p) => p.change)).toEqual([
      'user → admin',
      'admin → user',
      null,
    ])
    expect((doc.data.expiredCredentials as { name: string }[]).map((c) => c.name)).toEqual(['k1', 'k3'])
    expect((doc.data.expiringCredentials as { name: string }[]).map((c) => c.name)).toEqual(['k4'])
    expect(
      (doc.data.billingChanges as { kind: string; customer: string; change: string }[]).map((b) => [
        b.kind,
        b.customer,
        b.change,
      ]),
    ).toEqual([
      ['license', 'Initech', 'license.updated'],
      ['license', 'Acme', 'expired'],
      ['subscription', 'Acme', 'canceled'],
      ['subscription', 'Globex', 'cancels at period end'],
      ['license', 'Globex', 'over seats (12/10)'],
    ])
    expect(doc.data.retention).toEqual({
      days: 90,
      oldestHotRow: '2026-07-01T00:00:00.000Z',
      oldestAgeDays: 153,
      overdue: true,
    })
    expect(doc.data.backups).toMatchObject({ available: false })
    const daily = (doc.data.jobs as { job: string }[]).find((j) => j.job === 'reports/daily')
    // Its first run (1 Nov 01:14) served the 01:13 fire time: every November fire time is expected.
    expect(daily).toEqual({
      job: 'reports/daily',
      runs: 28,
      failed: 1,
      failureRate: 3.6,
      expected: 30,
      missed: 2,
      expectedFrom: '2026-11-01T01:13:00.000Z',
      paused: 0,
    })
  })

  it('ignores audit rows at -infinity or dated BC for the retention check instead of failing', async () => {
    const poison = await db.sql`
      insert into audit_logs (occurred_at, action, metadata)
      values ('-infinity', 'poison.minus_infinity', '{}'), ('0044-03-15 12:00:00+00 BC', 'poison.bc', '{}')
      returning id`
    try {
      const doc = await buildMonthlyReport(db.sql, await november(), { retentionDays: 90, now })
      expect(doc.data.retention).toMatchObject({ oldestHotRow: '2026-07-01T00:00:00.000Z', oldestAgeDays: 153 })
    } finally {
      await db.sql`delete from audit_logs where id in ${db.sql(poison.map((p) => p.id))}`
    }
  })

  it('ends with a checklist of the findings that need action', async () => {
    const doc = await buildMonthlyReport(db.sql, await november(), { retentionDays: 90, now })
    const findings = doc.findings!.map((f) => `${f.severity}: ${f.text}`)
    expect(findings).toEqual(
      expect.arrayContaining([
        'critical: Enable MFA for admin nomfa@example.com',
        'warning: Review dormant admin dormant@example.com (last login 2026-08-01)',
        'critical: Revoke expired api_key "k1" (expired 2026-11-10)',
        'critical: Revoke expired ssh_key "k3" (expired 2026-11-15)',
        'warning: Rotate tls_certificate "k4" before 2026-12-20',
        'info: Confirm 2 privilege change(s) were approved',
        'critical: No backup records: check backups/database',
        'warning: Oldest hot audit row is 153 days old (retention 90): check cleanup/audit-logs',
        'warning: reports/daily missed 2 of 30 expected runs',
      ]),
    )
    expect(findings.some((f) => f.includes('gone@example.com'))).toBe(false)
    const markdown = renderMarkdown(doc)
    expect(markdown).toContain('### Checklist\n\n- [ ] **critical**: Enable MFA for admin nomfa@example.com')
    expect(markdown).toContain('### Backups\n\nNo backup records.')
  })

  it('lists the first 500 privilege and MFA changes in time order when both actions have more', async () => {
    // September: 400 role changes on the hour and half hour, 400 MFA removals a quarter hour after each.
    await db.sql`
      insert into audit_logs (occurred_at, actor_id, action, target_id, metadata)
      select timestamptz '2026-09-01' + i * interval '30 minutes' + a.offset_by, 1, a.action, '2',
        case when a.action = 'user.role_changed' then '{"from": "user", "to": "admin"}'::jsonb else '{}' end
      from generate_series(0, 399) i,
        (values ('user.role_changed', interval '0'), ('auth.mfa_disabled', interval '15 minutes')) a(action, offset_by)`
    const september = await boundsOf(db.sql, resolvePeriod('monthly', { now, timezone: 'UTC', requested: '2026-09' }))
    const doc = await buildMonthlyReport(db.sql, september, { retentionDays: 90, now })
    const changes = doc.data.privilegeChanges as { occurredAt: string; action: string }[]
    expect(changes).toHaveLength(500)
    expect(changes.filter((c) => c.action === 'user.role_changed')).toHaveLength(250)
    expect(changes[0]).toMatchObject({ occurredAt: '2026-09-01T00:00:00.000Z', action: 'user.role_changed' })
    expect(changes.at(-1)).toMatchObject({ occurredAt: '2026-09-06T04:45:00.000Z', action: 'auth.mfa_disabled' })
    expect(changes.map((c) => c.occurredAt)).toEqual(changes.map((c) => c.occurredAt).sort())
    expect(doc.headline.find((m) => m.key === 'privilege_changes')?.value).toBe(400)
    expect(doc.sections.find((s) => s.title === 'Privilege and MFA changes')?.note).toBe(
      'Showing the first 500 changes.',
    )
  })

  it('reads backups taken and the last verified restore from the backups tables once they exist', async () => {
    await db.sql`
      create table jobs.backups (id int, started_at timestamptz, finished_at timestamptz, status text, verified_at timestamptz)`
    await db.sql`
      insert into jobs.backups values
        (1, '2026-11-03T02:00Z', '2026-11-03T02:10Z', 'succeeded', null),
        (2, '2026-11-10T02:00Z', '2026-11-10T02:10Z', 'failed', null),
        (3, '2026-11-17T02:00Z', '2026-11-17T02:10Z', 'succeeded', '2026-11-18T05:00Z'),
        (4, '2026-12-01T02:00Z', '2026-12-01T02:10Z', 'succeeded', '2026-12-01T03:00Z')`
    try {
      const doc = await buildMonthlyReport(db.sql, await november(), { retentionDays: 90, now })
      expect(doc.data.backups).toEqual({
        available: true,
        source: 'jobs.backups',
        taken: 2,
        failed: 1,
        lastBackupAt: '2026-11-17T02:10:00.000Z',
        lastVerifiedRestoreAt: '2026-11-18T05:00:00.000Z',
      })
      const findings = doc.findings!.map((f) => f.text)
      expect(findings).toContain('1 backup(s) failed this month')
      expect(findings.some((f) => /No backup|No restore/.test(f))).toBe(false)
    } finally {
      await db.sql`drop table jobs.backups`
    }
  })

  it('runs as a job for a backfilled month and writes the checklist into the CSV', async () => {
    const result = await runScript('scripts/reports/monthly.ts', {
      args: ['--period', '2026-11'],
      env: { DATABASE_URL: db.url, ADMIN_JOBS_NOW: '2026-12-15T00:00:00Z', REPORTS_DIR: reportsDir },
    })
    expect(result.code, result.output).toBe(0)
    const [row] = await db.sql`select period, period_start, data from jobs.reports where kind = 'monthly'`
    expect(row.period).toBe('2026-11')
    expect(row.period_start.toISOString()).toBe('2026-11-01T00:00:00.000Z')
    expect(row.data.headline.find((m: { key: string }) => m.key === 'expired_credentials').value).toBe(2)
    const csv = await fs.readFile(path.join(reportsDir, 'monthly', 'monthly-2026-11.csv'), 'utf8')
    expect(csv).toContain('checklist\r\nseverity,finding\r\ncritical,Enable MFA for admin nomfa@example.com\r\n')
    expect(csv).toContain('critical,"Revoke expired api_key ""k1"" (expired 2026-11-10)"')
  })
})
