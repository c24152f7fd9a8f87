import { createServer } from 'node:net'
import { humanDate } from '@admin-jobs/sdk/email'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { claimNotice, type ExpiringItem, mostUrgentThreshold } from '#notifications'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runJobScript } from './support/run.ts'
import { type HttpCapture, httpFaults, type SmtpCapture, startHttp, startSmtp } from './support/servers.ts'

const script = 'scripts/notifications/expiry.ts'
const t0 = Date.parse('2026-11-28T09:00:00Z')
const hour = 3_600_000
const day = 24 * hour
const at = (days: number) => new Date(t0 + days * day)
const dayOf = (d: Date) => d.toISOString().slice(0, 10)

let db: TestDatabase
let smtp: SmtpCapture
let http: HttpCapture

beforeAll(async () => {
  ;[db, smtp, http] = await Promise.all([createTestDatabase('expiry'), startSmtp(), startHttp()])
})
afterAll(async () => {
  await Promise.all([smtp?.close(), http?.close()])
})

function run(days: number, options: { args?: string[]; smtpUrl?: string } = {}) {
  return runJobScript(script, {
    args: options.args,
    env: {
      DATABASE_URL: db.url,
      ADMIN_JOBS_NOW: at(days).toISOString(),
      SLACK_WEBHOOK_URL: `${http.url}/hook`,
      SMTP_URL: options.smtpUrl ?? smtp.url,
      ALERT_EMAIL_FROM: 'jobs@example.com',
      ALERT_EMAIL_TO: 'admins@example.com',
    },
  })
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Messages received since the last call: owner notices by recipient and the admins' digests. */
function drain() {
  const mails = smtp.messages.splice(0)
  const slack = http.requests.splice(0)
  const to = (m: (typeof mails)[number]) => [m.to].flat().map((a) => a?.text)
  return {
    owners: mails.filter((m) => !to(m).includes('admins@example.com')).map((m) => `${to(m).join()}: ${m.subject}`),
    digests: mails.filter((m) => to(m).includes('admins@example.com')).map((m) => m.text ?? ''),
    slack: slack.map((r) => JSON.stringify(r.json())),
  }
}

const ledger = async () =>
  (
    await db.sql`select item_kind || ' ' || item_id || ' @' || threshold_days as k from jobs.expiry_notices order by 1`
  ).map((r) => r.k)

describe('mostUrgentThreshold', () => {
  it('picks the smallest threshold crossed and nothing once expired or further out than all of them', () => {
    const now = new Date(t0)
    expect(mostUrgentThreshold(at(31), now, [30, 7, 1])).toBeUndefined()
    expect(mostUrgentThreshold(at(30), now, [30, 7, 1])).toBe(30)
    expect(mostUrgentThreshold(at(7.5), now, [30, 7, 1])).toBe(30)
    expect(mostUrgentThreshold(at(7), now, [30, 7, 1])).toBe(7)
    expect(mostUrgentThreshold(at(0.5), now, [30, 7, 1])).toBe(1)
    expect(mostUrgentThreshold(at(0), now, [30, 7, 1])).toBeUndefined()
  })
})

describe('notifications/expiry', () => {
  beforeAll(async () => {
    await db.sql`
      insert into users (id, email, role) values (1, 'alice@example.com', 'admin'), (2, 'bob@example.com', 'user')`
    await db.sql`
      insert into credentials (id, owner_id, kind, name, expires_at, revoked_at) values
        (1, 1, 'api_key', 'deploy', ${at(20)}, null),
        (2, 2, 'tls_certificate', 'www', ${at(3)}, ${at(-1)}),
        (3, 2, 'ssh_key', 'bastion', ${at(80)}, null),
        (4, 2, 'service_account_key', 'ci', null, null)`
    await db.sql`
      insert into licenses (id, customer, product, seats, expires_at, status, contact_email) values
        (1, 'Acme', 'Pro', 10, ${at(5)}, 'active', 'it@acme.example'),
        (2, 'Globex', 'Pro', 5, ${at(-2)}, 'active', 'ops@globex.example'),
        (3, 'Initech', 'Pro', 5, ${at(-2)}, 'expired', 'it@initech.example')`
    await db.sql`
      insert into subscriptions (id, customer, plan, status, current_period_end, cancel_at_period_end, contact_email) values
        (1, 'Umbrella', 'team', 'active', ${new Date(t0 + 12 * hour)}, true, 'billing@umbrella.example'),
        (2, 'Hooli', 'team', 'active', ${at(2)}, false, 'billing@hooli.example')`
  })

  it('nothing is sent and nothing recorded in a dry run', async () => {
    const result = await run(0, { args: ['--dry-run'] })
    expect(result.code, result.output).toBe(0)
    expect(result.output).toContain('dry run: would send kind=expiry-notice')
    expect(result.output).toContain('dry run: would send kind=digest')
    expect(drain()).toEqual({ owners: [], digests: [], slack: [] })
    expect(await ledger()).toEqual([])
    expect(await db.sql`select 1 from jobs.expiry_digests`).toHaveLength(0)
  })

  it('sends each owner the most urgent threshold crossed and the admins one digest grouped by urgency', async () => {
    const result = await run(0)
    expect(result.code, result.output).toBe(0)
    const got = drain()
    expect(got.owners.sort()).toEqual([
      'alice@example.com: Your API key "deploy" expires in 20 days (18 Dec 2026)',
      'billing@umbrella.example: The team subscription of Umbrella expires in 12 hours (28 Nov 2026)',
      'it@acme.example: The Pro license of Acme expires in 5 days (3 Dec 2026)',
    ])
    expect(got.digests).toHaveLength(1)
    const digest = got.digests[0]!
    const order = [
      'Expired and still active (1)',
      'Expiring within 1 day (1)',
      'Expiring within 7 days (1)',
      'Expiring within 30 days (1)',
    ]
    expect(order.map((h) => digest.indexOf(h))).toEqual([...order.map((h) => digest.indexOf(h))].sort((a, b) => a - b))
    expect(order.every((h) => digest.includes(h))).toBe(true)
    expect(digest).toMatch(
      /Pro license of Globex \(license 2\) +26 Nov 2026, 09:00 UTC, expired 2 days ago +ops@globex\.example/,
    )
    // The summary comes first: counts by urgency, by kind, and the most urgent items, then the full list.
    expect(digest.indexOf('expired, still active: 1')).toBeLessThan(digest.indexOf('Most urgent'))
    expect(digest).toMatch(/credential +0 +0 +0 +1 +1/)
    expect(digest.indexOf('Most urgent')).toBeLessThan(digest.indexOf('Expired and still active (1)'))
    expect(got.slack).toHaveLength(1)
    expect(got.slack[0]).toContain('Expiring within 7 days (1)')
    expect(await ledger()).toEqual(['credential 1 @30', 'license 1 @7', 'subscription 1 @1'])
  })

  it('sends nothing again when re-run or run twice at once the same day', async () => {
    const [a, b] = await Promise.all([run(0.1), run(0.1)])
    expect(a.code, a.output).toBe(0)
    expect(b.code, b.output).toBe(0)
    expect(drain()).toEqual({ owners: [], digests: [], slack: [] })
  })

  it('lists expired, still-active items in the digest every day until resolved', async () => {
    expect((await run(1)).code).toBe(0)
    const got = drain()
    expect(got.owners).toEqual([])
    expect(got.digests).toHaveLength(1)
    expect(got.digests[0]).toContain('Expired and still active (2)')
    expect(got.digests[0]).toContain('team subscription of Umbrella')
    await db.sql`update licenses set status = 'expired' where id = 2`
    await db.sql`update subscriptions set status = 'expired' where id = 1`
    expect((await run(2)).code).toBe(0)
    expect(drain().digests).toEqual([])
  })

  it('after missed days sends only the most urgent threshold crossed, and a renewed item becomes eligible again', async () => {
    // No run between day 2 and day 19.5: the credential went from 18 days left to 12 hours, past 7 and 1.
    await db.sql`update licenses set status = 'expired' where id = 1`
    expect((await run(19.5)).code).toBe(0)
    expect(drain().owners).toEqual(['alice@example.com: Your API key "deploy" expires in 12 hours (18 Dec 2026)'])
    expect(await ledger()).toEqual(['credential 1 @1', 'credential 1 @30', 'license 1 @7', 'subscription 1 @1'])

    await db.sql`update credentials set expires_at = ${at(50)} where id = 1`
    expect((await run(21)).code).toBe(0)
    const got = drain()
    expect(got.owners).toEqual(['alice@example.com: Your API key "deploy" expires in 29 days (17 Jan 2027)'])
    expect(got.digests[0]).toContain('Expiring within 30 days (1)')
  })

  it('keeps a notice queued while the mail server is down, and delivers it once when it answers', async () => {
    await db.sql`insert into credentials (id, owner_id, kind, name, expires_at) values (5, 2, 'api_key', 'etl', ${at(27)})`
    const down = await run(22, { smtpUrl: `smtp://127.0.0.1:${await closedPort()}` })
    expect(down.code, down.output).toBe(0)
    expect(down.stderr).toContain('email delivery failed; the message stays queued')
    expect(await ledger()).toContain('credential 5 @7')
    expect(drain().owners).toEqual([])
    // Its retry is due (as it would be once its backoff passed); the next run of the day delivers it and the digest.
    await db.sql`update jobs.deliveries set next_attempt_at = now() where status = 'pending'`
    expect((await run(22.1)).code).toBe(0)
    const got = drain()
    expect(got.owners).toEqual(['bob@example.com: Your API key "etl" expires in 5 days (25 Dec 2026)'])
    expect(got.digests).toHaveLength(1)
    expect((await run(22.2)).code).toBe(0)
    expect(drain()).toEqual({ owners: [], digests: [], slack: [] })
  })

  it("emails the day's digest once while Slack answers 500 for three runs, and posts it once Slack answers", async () => {
    await db.sql`
      insert into licenses (id, customer, product, seats, expires_at, status, contact_email)
      values (20, 'Stark', 'Pro', 3, ${at(44)}, 'active', 'it@stark.example')`
    drain()
    http.setHandler(httpFaults.status(500, 'internal error'))
    try {
      for (const day of [40, 40.1, 40.2]) {
        const result = await run(day)
        expect(result.code, result.output).toBe(0)
        expect(result.stderr).toContain('slack delivery failed; the message stays queued')
        // The Slack retry is due for the next run (its backoff would otherwise hold it longer than this test).
        await db.sql`update jobs.deliveries set next_attempt_at = now() where status = 'pending'`
      }
      const got = drain()
      expect(got.digests).toHaveLength(1)
      expect(got.owners).toEqual([
        `it@stark.example: The Pro license of Stark expires in 4 days (${humanDate(at(44))})`,
      ])
      expect(got.slack.length).toBeGreaterThanOrEqual(3)
      const [slack] = await db.sql`
        select d.status, d.attempts, d.last_error from jobs.deliveries d join jobs.messages m on m.id = d.message_id
        where m.key = ${`digest:${dayOf(at(40))}`} and d.channel = 'slack'`
      expect(slack).toMatchObject({ status: 'pending', last_error: 'Slack webhook answered HTTP 500' })
      expect(slack!.attempts).toBeGreaterThanOrEqual(3)
    } finally {
      http.setHandler((_req, res) => void res.end('ok'))
    }
    expect((await run(40.3)).code).toBe(0)
    const after = drain()
    expect(after.digests).toEqual([])
    expect(after.owners).toEqual([])
    expect(after.slack).toHaveLength(1)
    expect(after.slack[0]).toContain(`Expiry digest ${dayOf(at(40))}`)
  })

  it('refuses a notice whose contact address is a list, smuggles a command or injects a header, and reports it once', async () => {
    const hostile = [
      'legit@x, attacker@evil.example, second@evil.example',
      'not an email; rcpt to:<x@evil>',
      'legit@x.example\r\nBcc: injected@evil.example',
    ]
    for (const [i, email] of hostile.entries())
      await db.sql`
        insert into licenses (id, customer, product, seats, expires_at, status, contact_email)
        values (${30 + i}, ${`Hostile${i}`}, 'Pro', 3, ${at(63)}, 'active', ${email})`
    await db.sql`
      insert into licenses (id, customer, product, seats, expires_at, status, contact_email)
      values (33, 'Fine', 'Pro', 3, ${at(63)}, 'active', 'it@fine.example')`
    drain()

    const first = await run(60)
    expect(first.code, first.output).toBe(0)
    const received = [...smtp.messages]
    const got = drain()
    expect(got.owners.sort()).toEqual([
      `bob@example.com: Your SSH key "bastion" expires in 20 days (${humanDate(at(80))})`,
      `it@fine.example: The Pro license of Fine expires in 3 days (${humanDate(at(63))})`,
    ])
    expect(received.flatMap((m) => m.envelopeTo).filter((a) => a.includes('evil'))).toEqual([])
    expect(received.map((m) => m.envelopeTo)).toContainEqual(['it@fine.example'])
    expect(received.filter((m) => JSON.stringify([m.to, m.cc, m.bcc, m.headers]).includes('evil'))).toEqual([])
    expect(first.output.match(/expiry-notice not sent: recipient refused/g)).toHaveLength(3)
    expect(first.stdout).toContain('refused=3')
    const refused = await db.sql`
      select m.subject, d.recipients, d.last_error from jobs.deliveries d join jobs.messages m on m.id = d.message_id
      where d.status = 'refused' order by m.id`
    expect(refused.map((r) => [r.subject.split(' expires')[0], r.recipients, r.last_error])).toEqual([
      ['The Pro license of Hostile0', [], 'recipient refused: it lists more than one address'],
      ['The Pro license of Hostile1', [], 'recipient refused: it lists more than one address'],
      ['The Pro license of Hostile2', [], 'recipient refused: it contains a line break'],
    ])
    // The admins learn of it in the day's digest, without the raw value.
    expect(got.digests).toHaveLength(1)
    // Once each in the full list (the summary's most urgent items may name them again).
    const fullList = got.digests[0]!.slice(got.digests[0]!.indexOf('Expiring within 7 days ('))
    expect(fullList.match(/address refused \(/g)).toHaveLength(3)
    expect(got.digests[0]).not.toContain('evil')

    // Not tried again the next day: its ledger row records the notice, refused once.
    const next = await run(61)
    expect(next.code, next.output).toBe(0)
    expect(next.output).not.toContain('recipient refused')
    const later = drain()
    expect(later.owners).toEqual([])
    expect(later.digests).toHaveLength(1)
    expect(later.digests[0]).not.toContain('refused')
    expect(await db.sql`select 1 from jobs.deliveries where status = 'refused'`).toHaveLength(3)
    // Nothing this server ever received, accepted or not, was addressed to an injected recipient.
    expect(smtp.attempts.flatMap((m) => m.envelopeTo).filter((a) => a.includes('evil'))).toEqual([])
  })

  it('lets exactly one of two concurrent claims send, and frees a claim whose transaction rolled back', async () => {
    const item: ExpiringItem = { kind: 'license', id: '99', label: 'x', expiresAt: at(3), email: null }
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    const failing = db.sql
      .begin(async (tx) => {
        expect(await claimNotice(tx, item, 7)).toBe(true)
        await held
        throw new Error('send failed')
      })
      .catch((err: Error) => err.message)
    await new Promise((r) => setTimeout(r, 100))
    // Blocks on the uncommitted claim; once it rolls back, this one owns the notice.
    const second = db.sql.begin((tx) => claimNotice(tx, item, 7))
    release()
    expect(await failing).toBe('send failed')
    expect(await second).toBe(true)
    const [a, b] = await Promise.all([
      db.sql.begin((tx) => claimNotice(tx, item, 7)),
      db.sql.begin((tx) => claimNotice(tx, { ...item, expiresAt: at(4) }, 7)),
    ])
    expect([a, b]).toEqual([false, true])
  })
})
