import { createLogger, createNotifier, deliverDue, parseConfig } from '@admin-jobs/sdk/platform'
import { SMTPServer } from 'smtp-server'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { type HttpCapture, type SmtpCapture, startHttp, startSmtp } from './support/servers.ts'

const quiet = createLogger({ scope: 'test', write: () => {} })

let db: TestDatabase
let smtp: SmtpCapture
let slack: HttpCapture

beforeAll(async () => {
  db = await createTestDatabase('outbox')
  smtp = await startSmtp()
  slack = await startHttp()
})

afterAll(async () => {
  await smtp?.close()
  await slack?.close()
})

beforeEach(async () => {
  await db.sql`truncate jobs.messages cascade`
  smtp.messages.length = 0
  slack.requests.length = 0
  slack.setHandler((_req, res) => void res.end('ok'))
})

const env = (extra: Record<string, string> = {}) => ({
  DATABASE_URL: db.url,
  SMTP_URL: smtp.url,
  ALERT_EMAIL_TO: 'ops@example.com',
  ALERT_EMAIL_FROM: 'jobs@example.com',
  SLACK_WEBHOOK_URL: `${slack.url}/hook`,
  ...extra,
})
const config = (extra: Record<string, string> = {}) => parseConfig(env(extra))
const notifier = (extra: Record<string, string> = {}) =>
  createNotifier({ sql: db.sql, config: config(extra), log: quiet, job: 'test/outbox' })
const deliver = (extra: Record<string, string> = {}, options: Partial<Parameters<typeof deliverDue>[1]> = {}) =>
  deliverDue(db.sql, { config: config(extra), log: quiet, ...options })
const deliveries = () =>
  db.sql`select channel, status, attempts, recipients, last_error from jobs.deliveries order by message_id, channel`
const notice = (subject: string, extra: object = {}) => ({
  kind: 'test',
  subject,
  text: `${subject} body`,
  slack: { text: subject },
  ...extra,
})

describe('the outbox', () => {
  it('delivers a queued message once per channel, with the Message-ID it was given when queued', async () => {
    await notifier()(notice('Daily report'))
    expect((await deliver()).sent).toBe(2)
    expect((await deliver()).sent).toBe(0)
    const [mail] = await smtp.waitFor(1)
    expect(smtp.messages).toHaveLength(1)
    expect(slack.requests).toHaveLength(1)
    const [message] = await db.sql`select message_id from jobs.messages`
    expect(mail!.messageId).toBe(message!.message_id)
    expect((await deliveries()).map((d) => [d.channel, d.status])).toEqual([
      ['email', 'sent'],
      ['slack', 'sent'],
    ])
  })

  it('queues a message with a key only once, however often it is asked', async () => {
    const notify = notifier()
    const first = await notify(notice('Digest', { key: 'digest:2026-12-01' }))
    const again = await notify(notice('Digest', { key: 'digest:2026-12-01' }))
    expect(first.queued).toBe(true)
    expect(again.queued).toBe(false)
    expect(await db.sql`select 1 from jobs.messages`).toHaveLength(1)
  })

  it('neither delays nor repeats email while Slack hangs, and brings Slack what it missed once it answers', async () => {
    slack.setHandler(() => {}) // never answers
    await notifier()(notice('one'))
    await notifier()(notice('two'))
    const started = Date.now()
    const report = await deliver({}, { timeouts: { slackMs: 300 } })
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(report).toMatchObject({ sent: 2, retrying: 1, skipped: ['slack'] })
    expect(smtp.messages).toHaveLength(2)
    slack.setHandler((_req, res) => void res.end('ok'))
    await db.sql`update jobs.deliveries set next_attempt_at = now() where status = 'pending'`
    expect((await deliver()).sent).toBe(2)
    expect(smtp.messages).toHaveLength(2)
    expect(slack.requests.filter((r) => r.body.includes('"one"') || r.body.includes('"two"')).length).toBeGreaterThan(0)
    expect((await deliveries()).every((d) => d.status === 'sent')).toBe(true)
  })

  it('keeps a Slack message queued while Slack answers 500, without sending the email again', async () => {
    slack.setHandler((_req, res) => {
      res.statusCode = 500
      res.end('down')
    })
    await notifier()(notice('Expiry digest'))
    for (let round = 0; round < 3; round++) {
      await db.sql`update jobs.deliveries set next_attempt_at = now() where status = 'pending'`
      await deliver()
    }
    expect(smtp.messages).toHaveLength(1)
    const slackRow = (await deliveries()).find((d) => d.channel === 'slack')!
    expect(slackRow).toMatchObject({ status: 'pending', last_error: 'Slack webhook answered HTTP 500' })
  })

  it('sends a message again after a run died mid-send (its lease ran out), once', async () => {
    await notifier()(notice('Alert'))
    // A run claimed it and died before marking it: status sending, lease long gone.
    await db.sql`update jobs.deliveries set status = 'sending', attempts = 1, lease_until = now() - interval '1 minute'`
    expect((await deliver()).sent).toBe(2)
    expect((await deliver()).sent).toBe(0)
    expect(smtp.messages).toHaveLength(1)
  })

  it('leaves a message claimed by a live run alone until its lease ends', async () => {
    await notifier()(notice('Alert'))
    await db.sql`update jobs.deliveries set status = 'sending', lease_until = now() + interval '1 minute'`
    expect((await deliver()).sent).toBe(0)
    expect(smtp.messages).toHaveLength(0)
  })

  it('hands back at once the message it was sending when the round is stopped, for the next round to send once', async () => {
    smtp.setFault({ kind: 'slow-greeting', delayMs: 30_000 })
    try {
      await notifier()(notice('Weekly report', { slack: undefined }))
      const stop = new AbortController()
      setTimeout(() => stop.abort(), 300)
      const started = Date.now()
      const report = await deliver({}, { signal: stop.signal })
      expect(Date.now() - started).toBeLessThan(3_000)
      expect(report).toMatchObject({ sent: 0, retrying: 0, failed: 0 })
      const [row] = await db.sql`
        select status, attempts, lease_until, next_attempt_at <= now() as due from jobs.deliveries`
      expect(row).toEqual({ status: 'pending', attempts: 0, lease_until: null, due: true })
    } finally {
      smtp.setFault(undefined)
    }
    expect((await deliver()).sent).toBe(1)
    expect(smtp.messages.map((m) => m.subject)).toEqual(['Weekly report'])
  })

  it('gives up on a message the mail server refuses for good (5xx), saying why', async () => {
    const refusing = new SMTPServer({
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onRcptTo(_address, _session, callback) {
        callback(Object.assign(new Error('no such user'), { responseCode: 550 }))
      },
    })
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve))
    const port = (refusing.server.address() as { port: number }).port
    try {
      const extra = { SMTP_URL: `smtp://127.0.0.1:${port}` }
      await notifier(extra)(notice('Notice', { to: 'gone@example.com', slack: undefined }))
      expect((await deliver(extra)).failed).toBe(1)
      const [row] = await deliveries()
      expect(row).toMatchObject({ channel: 'email', status: 'failed', recipients: ['gone@example.com'] })
      expect(row!.last_error).toContain('no such user')
    } finally {
      await new Promise<void>((resolve) => refusing.close(() => resolve()))
    }
  })
})

describe('a recipient taken from data', () => {
  it('is exactly one address: a list, a semicolon or an injected header is refused, never expanded', async () => {
    const notify = notifier()
    const values = [
      'legit@x.example, attacker@evil.example, second@evil.example',
      'not an email; rcpt to:<x@evil.example>',
      'legit@x.example\r\nBcc: injected@evil.example',
      'legit@x.example',
    ]
    const results = []
    for (const to of values) results.push(await notify(notice('Your license expires', { to, slack: undefined })))
    expect(results.map((r) => r.queued)).toEqual([false, false, false, true])
    expect(results[0]!.refused).toBe('recipient refused: it lists more than one address')
    expect(results[2]!.refused).toBe('recipient refused: it contains a line break')
    await deliver()
    expect(smtp.messages).toHaveLength(1)
    expect(smtp.messages[0]!.to).toMatchObject({ text: 'legit@x.example' })
    const rows = await deliveries()
    expect(rows.map((r) => r.status)).toEqual(['refused', 'refused', 'refused', 'sent'])
  })

  it('is reported as refused, not as sent, by a dry run', async () => {
    const lines: string[] = []
    const dry = createNotifier({
      sql: db.sql,
      config: config(),
      log: createLogger({ scope: 'test', write: (_stream, line) => lines.push(line) }),
      dryRun: true,
    })
    const result = await dry(notice('Your license expires', { to: 'a@x.example, b@evil.example', slack: undefined }))
    expect(result).toEqual({ queued: false, refused: 'recipient refused: it lists more than one address' })
    expect(lines.join('\n')).toContain('dry run: would refuse test: recipient refused: it lists more than one address')
    expect(lines.join('\n')).not.toContain('would send')
    expect(await deliveries()).toEqual([])
  })
})
