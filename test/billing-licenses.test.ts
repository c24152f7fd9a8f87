import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runJobScript as runScript, startScript } from './support/run.ts'
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
  await db.sql`truncate licenses, subscriptions, audit_logs, jobs.billing_changes, jobs.incidents, jobs.messages cascade`
  smtp.messages.length = 0
  smtp.setFault(undefined)
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

/** Each billing message's kind and delivery status, in the order they were queued. */
const outbox = () => db.sql`
  select m.kind, d.status, d.recipients from jobs.messages m join jobs.deliveries d on d.message_id = m.id
  where m.kind like 'billing-%' order by m.id`

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
    // Every notice has an HTML part beside its text part, saying the same.
    for (const m of Object.values(byRecipient)) expect(m.html || '', m.subject).toContain('<h1')
    expect(byRecipient['ops@acme.test']!.html).toContain('expired on')
    const digest = byRecipient['admins@example.test']!
    expect(digest.subject).toBe('Billing: 5 license/subscription changes')
    expect(digest.text).toContain('license.expired: license 4 (Team) of Delta, was active (no contact email)')

    const [run] = await db.sql`select * from jobs.runs where job = 'billing/licenses' order by id desc limit 1`
    expect(run!.stats).toMatchObject({
      licensesExpired: 2,
      subscriptionsExpired: 2,
      subscriptionsCanceled: 1,
      noticesQueued: 4,
      noticesRefused: 0,
      digestChanges: 5,
      digestQueued: true,
    })
    // Each change links its notice and the digest that listed it; every message went out once.
    const changes = await db.sql`
      select entity_id::int as id, notice_message_id is not null as notice, digest_message_id
      from jobs.billing_changes order by entity, entity_id`
    expect(changes.map((c) => [c.id, c.notice])).toEqual([
      [1, true],
      [4, false],
      [10, true],
      [12, true],
      [14, true],
    ])
    expect(new Set(changes.map((c) => c.digest_message_id)).size).toBe(1)
    expect((await outbox()).map((m) => [m.kind, m.status])).toEqual([
      ...Array(4).fill(['billing-notice', 'sent']),
      ['billing-digest', 'sent'],
    ])

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
      noticesQueued: 0,
      digestChanges: 0,
    })
    expect(await outbox()).toHaveLength(5)
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
    expect(await db.sql`select 1 from jobs.messages`).toHaveLength(0)
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
    const runs = await db.sql`select id from jobs.runs`
    const bad = await runScript(script, { env: env({ SUBSCRIPTION_GRACE_DAYS: 'a week' }) })
    expect(bad.code).toBe(2)
    expect(bad.output).toContain('SUBSCRIPTION_GRACE_DAYS')
    // Refused before connecting: no history row.
    expect(await db.sql`select id from jobs.runs`).toEqual(runs)
  })

  it('alerts once per over-allocated license until it is fixed, then resolves the incident', async () => {
    await db.sql`update licenses set seats_used = 12 where id = 2`
    await db.sql`update licenses set seats_used = 16 where id = 3`
    for (let i = 0; i < 2; i++) expect((await runScript(script, { env: env() })).code).toBe(0)
    const seatMessages = () => db.sql`
      select incident_key, kind from jobs.messages where incident_key like 'billing/licenses:seats:%' order by id`
    expect((await seatMessages()).map((a) => [a.incident_key, a.kind])).toEqual([
      ['billing/licenses:seats:2', 'alert'],
      ['billing/licenses:seats:3', 'alert'],
    ])
    await db.sql`update licenses set seats_used = 10 where id = 2`
    expect((await runScript(script, { env: env() })).code).toBe(0)
    expect((await seatMessages()).map((a) => [a.incident_key, a.kind]).slice(2)).toEqual([
      ['billing/licenses:seats:2', 'recovery'],
    ])
    // A license that disappears resolves its incident too.
    await db.sql`delete from licenses where id = 3`
    const gone = await runScript(script, { env: env() })
    expect(gone.code, gone.output).toBe(0)
    const incidents = await db.sql`
      select key, status from jobs.incidents where key like 'billing/licenses:seats:%' order by key`
    expect(incidents.map((i) => [i.key, i.status])).toEqual([
      ['billing/licenses:seats:2', 'resolved'],
      ['billing/licenses:seats:3', 'resolved'],
    ])
    const [last] = await db.sql`select stats from jobs.runs where job = 'billing/licenses' order by id desc limit 1`
    expect(last!.stats).toMatchObject({ overAllocated: 0, seatAlertsResolved: 1 })
  })

  it('keeps notices queued while the mail server defers them (4xx), and the next run sends each once', async () => {
    smtp.setFault({ kind: 'refuse', code: 451 })
    const deferred = await runScript(script, { env: env() })
    // The changes are made and their notices are safe in the outbox: the run succeeds.
    expect(deferred.code, deferred.output).toBe(0)
    expect((await statuses())[1]).toBe('expired')
    expect((await outbox()).map((m) => m.status)).toEqual(Array(5).fill('pending'))
    expect(smtp.messages).toHaveLength(0)

    smtp.setFault(undefined)
    await db.sql`update jobs.deliveries set next_attempt_at = now() where status = 'pending'`
    const again = await runScript(script, { env: env() })
    expect(again.code, again.output).toBe(0)
    await smtp.waitFor(5)
    expect((await runScript(script, { env: env() })).code).toBe(0)
    await new Promise((r) => setTimeout(r, 200))
    expect(smtp.messages.filter((m) => m.subject?.startsWith('Your '))).toHaveLength(4)
    expect(smtp.messages.filter((m) => m.subject?.startsWith('Billing: '))).toHaveLength(1)
    expect(await db.sql`select 1 from audit_logs`).toHaveLength(5)
  })

  it('refuses a contact that is not one address, once, and tells the admins in the digest', async () => {
    await db.sql`update licenses set contact_email = 'legit@x.example, attacker@evil.example' where id = 1`
    await db.sql`update subscriptions set contact_email = ${'billing@echo.test\r\nBcc: injected@evil.example'} where id = 14`
    const first = await runScript(script, { env: env() })
    expect(first.code, first.output).toBe(0)
    expect(first.output.match(/recipient refused/g)).toHaveLength(2)
    expect(first.output).toContain('billing-notice not sent: recipient refused: it lists more than one address')
    await smtp.waitFor(3)
    await new Promise((r) => setTimeout(r, 200))
    const recipients = smtp.messages.flatMap((m) => (m.to && 'value' in m.to ? m.to.value.map((v) => v.address) : []))
    expect(recipients.sort()).toEqual(['admins@example.test', 'billing@acme.test', 'billing@gamma.test'])
    expect(recipients.join(' ')).not.toContain('evil')
    const digest = smtp.messages.find((m) => m.subject?.startsWith('Billing: '))!
    expect(digest.text).toContain(
      'license 1 (Pro) of Acme, was active (customer notice refused: it lists more than one address)',
    )
    expect(digest.text).toContain('(customer notice refused: it contains a line break)')
    expect(digest.text).not.toContain('evil')
    expect((await outbox()).filter((m) => m.status === 'refused')).toHaveLength(2)
    const [run] = await db.sql`select stats from jobs.runs where job = 'billing/licenses' order by id desc limit 1`
    expect(run!.stats).toMatchObject({ noticesQueued: 2, noticesRefused: 2 })

    const second = await runScript(script, { env: env() })
    expect(second.output).not.toContain('recipient refused')
    expect(smtp.messages).toHaveLength(3)
  })

  it('leaves the notices of a run killed while the mail server is slow to greet to the next run, which sends each once', async () => {
    smtp.setFault({ kind: 'slow-greeting', delayMs: 60_000 })
    const run = startScript(script, { env: env() })
    const until = Date.now() + 20_000
    while ((await db.sql`select 1 from jobs.deliveries where status = 'sending'`).length === 0) {
      if (Date.now() > until) throw new Error(`no delivery started:\n${run.output()}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    run.child.kill('SIGKILL')
    await run.done
    expect((await statuses())[1]).toBe('expired')
    expect((await outbox()).every((m) => m.status === 'pending' || m.status === 'sending')).toBe(true)
    expect(await outbox()).toHaveLength(5)

    smtp.setFault(undefined)
    // The dead run's claim lasts its lease; by the next scheduled run it has run out.
    await db.sql`update jobs.deliveries set lease_until = now() - interval '1 second' where status = 'sending'`
    const next = await runScript(script, { env: env() })
    expect(next.code, next.output).toBe(0)
    await smtp.waitFor(5)
    expect((await runScript(script, { env: env() })).code).toBe(0)
    await new Promise((r) => setTimeout(r, 200))
    expect(smtp.messages).toHaveLength(5)
    expect(new Set(smtp.messages.map((m) => m.messageId)).size).toBe(5)
    expect(await db.sql`select 1 from audit_logs`).toHaveLength(5)
    const [last] = await db.sql`select stats from jobs.runs where job = 'billing/licenses' order by id desc limit 1`
    expect(last!.stats).toMatchObject({ licensesExpired: 0, noticesQueued: 0, digestChanges: 0 })
  })
})
