import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript } from './support/run.ts'
import { type SmtpCapture, startSmtp } from './support/servers.ts'

const script = 'scripts/billing/licenses.ts'
const now = '2026-06-15T12:00:00.000Z'
let db: TestDatabase
let smtp: SmtpCapture

beforeAll(async () => {
  db = await createTestDatabase('billing')
  smtp = await startSmtp()
})
afterAll(() => smtp.close())

beforeEach(async () => {
  await db.sql`truncate licenses, subscriptions, audit_logs, jobs.billing_changes, jobs.alert_state, jobs.alerts`
  smtp.messages.length = 0
  // Every row sits at a boundary: one second on either side of the moment a change is due.
  await db.sql`
    insert into licenses (id, customer, product, seats, seats_used, expires_at, status, contact_email) values
      (1, 'Acme', 'Pro', 10, 5, ${now}::timestamptz - interval '1 second', 'active', 'ops@acme.test'),
      (2, 'Beta', 'Pro', 10, 5, ${now}::timestamptz + interval '1 second', 'active', 'ops@beta.test'),
      (3, 'Gamma', 'Team', 10, 5, ${now}::timestamptz - interval '9 days', 'suspended', 'ops@gamma.test'),
      (4, 'Delta', 'Team', 5, 5, ${now}::timestamptz - interval '1 day', 'active', null)`
  await db.sql`
    insert into subscriptions (id, customer, plan, status, current_period_end, cancel_at_period_end, contact_email) values
      (10, 'Acme', 'gold', 'past_due', ${now}::timestamptz - interval '7 days 1 second', false, 'billing@acme.test'),
      (11, 'Beta', 'gold', 'past_due', ${now}::timestamptz - interval '6 days 23:59:59', false, 'billing@beta.test'),
      (12, 'Gamma', 'silver', 'active', ${now}::timestamptz - interval '1 second', true, 'billing@gamma.test'),
      (13, 'Delta', 'silver', 'active', ${now}::timestamptz + interval '1 second', true, 'billing@delta.test'),
      (14, 'Echo', 'trial', 'trialing', ${now}::timestamptz - interval '1 second', false, 'billing@echo.test'),
      (15, 'Fox', 'trial', 'trialing', ${now}::timestamptz + interval '1 second', false, 'billing@fox.test'),
      (16, 'Golf', 'gold', 'active', ${now}::timestamptz - interval '30 days', false, 'billing@golf.test')`
})

const env = (extra: Record<string, string> = {}) => ({
  DATABASE_URL: db.url,
  SMTP_URL: smtp.url,
  ALERT_EMAIL_TO: 'admins@example.test',
  ADMIN_JOBS_NOW: now,
  ...extra,
})

async function statuses() {
  const licenses = await db.sql`select id::int, status from licenses order by id`
  const subs = await db.sql`select id::int, status from subscriptions order by id`
  return Object.fromEntries([...licenses, ...subs].map((r) => [r.id, r.status]))
}

describe('billing/licenses', () => {
  it('makes exactly the due changes at their boundaries, each with an audit row, a customer notice and one digest, and none twice', async () => {
    const result = await runScript(script, { env: env() })
    expect(result.code, result.output).toBe(0)
    expect(await statuses()).toEqual({
      1: 'expired',
      2: 'active',
      3: 'suspended',
      4: 'expired',
      10: 'expired',
      11: 'past_due',
      12: 'canceled',
      13: 'active',
      14: 'expired',
      15: 'trialing',
      16: 'active',
    })
    const audit = await db.sql`select * from audit_logs order by target_type, target_id::int`
    expect(audit.map((a) => [a.action, a.target_type, a.target_id, a.actor_id])).toEqual([
      ['license.expired', 'license', '1', null],
      ['license.expired', 'license', '4', null],
      ['subscription.expired', 'subscription', '10', null],
      ['subscription.canceled', 'subscription', '12', null],
      ['subscription.expired', 'subscription', '14', null],
    ])
    expect(audit[0]!.metadata.before.status).toBe('active')
    expect(audit[0]!.metadata.after.status).toBe('expired')
    expect(audit[0]!.metadata.before.seats).toBe(10)
    expect(audit[3]!.metadata.before.status).toBe('active')
    expect(audit[3]!.metadata.after.status).toBe('canceled')

    // Four customer notices (license 4 has no contact email) and one digest to the admins.
    await smtp.waitFor(5)
    await new Promise((r) => setTimeout(r, 200))
    const byRecipient = Object.fromEntries(smtp.messages.map((m) => [m.to && 'text' in m.to ? m.to.text : '', m]))
    expect(Object.keys(byRecipient).sort()).toEqual([
      'admins@example.test',
      'billing@acme.test',
      'billing@echo.test',
      'billing@gamma.test',
      'ops@acme.test',
    ])
    expect(byRecipient['ops@acme.test']!.subject).toBe('Your Pro license has expired')
    expect(byRecipient['billing@gamma.test']!.subject).toBe('Your silver subscription has been canceled')
    expect(byRecipient['billing@echo.test']!.text).toContain('trial ended')
    const digest = byRecipient['admins@example.test']!
    expect(digest.subject).toBe('Billing: 5 license/subscription changes')
    expect(digest.text).toContain('license.expired: license 4 (Team) of Delta, was active (no contact email)')

    const [run] = await db.sql`select * from jobs.runs where job = 'billing/licenses' order by id desc limit 1`
    expect(run!.stats).toMatchObject({
      licensesExpired: 2,
      subscriptionsExpired: 2,
      subscriptionsCanceled: 1,
      noticesSent: 4,
      digestChanges: 5,
    })

    // The second run finds nothing to do and sends nothing.
    const second = await runScript(script, { env: env() })
    expect(second.code, second.output).toBe(0)
    await new Promise((r) => setTimeout(r, 300))
    expect(smtp.messages).toHaveLength(5)
    const [{ n }] = await db.sql`select count(*)::int as n from audit_logs`
    expect(n).toBe(5)
    const [last] = await db.sql`select stats from jobs.runs where job = 'billing/licenses' order by id desc limit 1`
    expect(last!.stats).toMatchObject({
      licensesExpired: 0,
      subscriptionsExpired: 0,
      subscriptionsCanceled: 0,
      noticesSent: 0,
    })
  })

  it('lists the changes in a dry run and changes, records and sends nothing', async () => {
    const result = await runScript(script, { args: ['--dry-run'], env: env() })
    expect(result.code, result.output).toBe(0)
    expect(result.output).toContain('would change license 1 (Acme, Pro): active → expired')
    expect(result.output).toContain('would change subscription 12 (Gamma, silver): active → canceled')
    expect((await statuses())[1]).toBe('active')
    const [{ n }] = await db.sql`select count(*)::int as n from audit_logs`
    expect(n).toBe(0)
    const [{ c }] = await db.sql`select count(*)::int as c from jobs.billing_changes`
    expect(c).toBe(0)
    await new Promise((r) => setTimeout(r, 200))
    expect(smtp.messages).toHaveLength(0)
    const [run] =
      await db.sql`select stats, dry_run from jobs.runs where job = 'billing/licenses' order by id desc limit 1`
    expect(run!.dry_run).toBe(true)
    expect(run!.stats.changes).toHaveLength(5)
  })

  it('honours SUBSCRIPTION_GRACE_DAYS and refuses a malformed one with exit 2', async () => {
    const longer = await runScript(script, { env: env({ SUBSCRIPTION_GRACE_DAYS: '8' }) })
    expect(longer.code, longer.output).toBe(0)
    expect((await statuses())[10]).toBe('past_due')
    const bad = await runScript(script, { env: env({ SUBSCRIPTION_GRACE_DAYS: 'a week' }) })
    expect(bad.code).toBe(2)
    expect(bad.output).toContain('SUBSCRIPTION_GRACE_DAYS')
  })

  it('alerts once per over-allocated license until it is fixed, then resolves the incident', async () => {
    await db.sql`update licenses set seats_used = 12 where id = 2`
    await db.sql`update licenses set seats_used = 16 where id = 3`
    for (let i = 0; i < 2; i++) expect((await runScript(script, { env: env() })).code).toBe(0)
    const alerts = await db.sql`select dedupe_key, kind from jobs.alerts order by id`
    expect(alerts.map((a) => [a.dedupe_key, a.kind])).toEqual([
      ['billing/licenses:seats:2', 'alert'],
      ['billing/licenses:seats:3', 'alert'],
    ])
    await db.sql`update licenses set seats_used = 10 where id = 2`
    expect((await runScript(script, { env: env() })).code).toBe(0)
    const after = await db.sql`select dedupe_key, kind from jobs.alerts order by id`
    expect(after.map((a) => [a.dedupe_key, a.kind]).slice(2)).toEqual([['billing/licenses:seats:2', 'recovery']])
    const [state] = await db.sql`select status from jobs.alert_state where dedupe_key = 'billing/licenses:seats:3'`
    expect(state!.status).toBe('open')
  })

  it('retries a customer notice that failed on the next run and sends it once', async () => {
    // A server that refuses every recipient (550): the notices fail at once, without transport retries.
    const refusing = new SMTPServer({
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onRcptTo: (_address, _session, callback) =>
        callback(Object.assign(new Error('mailbox unavailable'), { responseCode: 550 })),
    })
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve))
    const port = (refusing.server.address() as AddressInfo).port
    const broken = await runScript(script, { env: env({ SMTP_URL: `smtp://127.0.0.1:${port}` }) })
    await new Promise<void>((resolve) => refusing.close(() => resolve()))
    expect(broken.code, broken.output).toBe(1)
    expect((await statuses())[1]).toBe('expired')
    const failed = await db.sql`select notice_status from jobs.billing_changes where notice_status = 'failed'`
    expect(failed).toHaveLength(4)
    const again = await runScript(script, { env: env() })
    expect(again.code, again.output).toBe(0)
    await smtp.waitFor(5)
    await new Promise((r) => setTimeout(r, 200))
    expect(smtp.messages.filter((m) => m.subject?.startsWith('Your '))).toHaveLength(4)
  })
})
