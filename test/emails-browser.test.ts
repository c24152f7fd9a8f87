import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { seedDemo } from '@admin-jobs/sdk/platform'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hasChromium, launchChromium, screenshotPath } from './support/browser.ts'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript } from './support/run.ts'
import { type CapturedMail, type SmtpCapture, startSmtp } from './support/servers.ts'

// Every kind of email the jobs send, made by the real jobs from demo data, delivered through the outbox to a real
// SMTP server, parsed by mailparser, and its HTML part shown in headless Chromium as a mail client would show it.

const now = '2026-12-01T04:00:00.000Z'
let db: TestDatabase
let smtp: SmtpCapture
let browser: Browser
const mails = new Map<string, CapturedMail>()
const reportsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'emails-browser-'))

const env = (extra: Record<string, string> = {}) => ({
  DATABASE_URL: db.url,
  SMTP_URL: smtp.url,
  ALERT_EMAIL_TO: 'ops@corp.example',
  ADMIN_JOBS_ENVIRONMENT: 'prod-eu',
  ADMIN_JOBS_NOW: now,
  REPORTS_DIR: reportsDir,
  ...extra,
})

/** Runs a script, expects `code`, and returns the mails it delivered. */
async function send(script: string, extra: Record<string, string> = {}, code = 0): Promise<CapturedMail[]> {
  const before = smtp.messages.length
  const result = await runScript(script, { env: env(extra) })
  expect(result.code, result.output).toBe(code)
  return smtp.messages.slice(before)
}

const toAdmins = (m: CapturedMail) => m.envelopeTo.includes('ops@corp.example')

beforeAll(async () => {
  ;[db, smtp] = await Promise.all([createTestDatabase('emails_browser'), startSmtp()])
  await seedDemo(db.sql, { now: new Date(now), users: 150 })
  // One OAuth client secret 30 days from expiry, so its owner gets a 30-day notice.
  await db.sql`
    insert into credentials (id, owner_id, kind, name, expires_at)
    values (990001, (select min(id) from users), 'oauth_client_secret', 'billing-portal', '2026-12-31T03:29:17.847Z')`

  const failing = 'test/fixtures/scripts/test/fail.ts'
  const actions = {
    GITHUB_ACTIONS: 'true',
    GITHUB_REPOSITORY: 'acme/admin',
    GITHUB_RUN_ID: '4242',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_EVENT_NAME: 'schedule',
  }
  mails.set('alert', (await send(failing, actions, 1)).find(toAdmins)!)
  mails.set('recovery', (await send(failing, { ...actions, FIXTURE_OUTCOME: 'succeed' })).find(toAdmins)!)
  const expiry = await send('scripts/notifications/expiry.ts')
  mails.set('expiry-notice', expiry.find((m) => m.subject?.includes('"billing-portal"'))!)
  mails.set('expiry-digest', expiry.find((m) => toAdmins(m) && m.subject?.startsWith('Expiry digest'))!)
  const billing = await send('scripts/billing/licenses.ts')
  mails.set('billing-notice', billing.find((m) => !toAdmins(m))!)
  mails.set('billing-digest', billing.find(toAdmins)!)
  mails.set('report-daily', (await send('scripts/reports/daily.ts')).find(toAdmins)!)
  mails.set('report-monthly', (await send('scripts/reports/monthly.ts')).find(toAdmins)!)
  if (hasChromium) browser = await launchChromium()
}, 240_000)

afterAll(async () => {
  await browser?.close()
  await smtp?.close()
  fs.rmSync(reportsDir, { recursive: true, force: true })
})

/** What each kind must say, in its text part and as Chromium renders its HTML part. */
const expected: Record<string, RegExp[]> = {
  alert: [/test\/fail failed/, /when/, /1 Dec 2026, 04:00 UTC/, /where/, /prod-eu/, /View the run/],
  recovery: [/test\/fail recovered/, /1 Dec 2026, 04:00 UTC/, /prod-eu/],
  'expiry-notice': [/Your OAuth client secret "billing-portal" expires on 31 Dec 2026, 03:29 UTC, in 30 days/],
  'expiry-digest': [/Most urgent/, /Expired and still active \(\d+\)/, /Expiring within 30 days \(\d+\)/],
  'billing-notice': [/Hello /, /\d{1,2} [A-Z][a-z]{2} 20\d\d/],
  'billing-digest': [/billing changes?/, /(license|subscription)\.(expired|canceled)/],
  'report-daily': [/Daily activity report/, /Logins/],
  'report-monthly': [/Monthly compliance report: November 2026/, /How counted/i, /Job reliability/],
}

describe('every email the jobs send', () => {
  it('has an HTML part and a text part, from the deployment-named sender, with what its kind must say', () => {
    expect([...mails.keys()].sort()).toEqual(Object.keys(expected).sort())
    for (const [kind, mail] of mails) {
      expect(mail, kind).toBeDefined()
      expect(mail.html, kind).toMatch(/^<!doctype html>/)
      expect(mail.text, kind).toBeTruthy()
      expect(mail.from?.value[0], kind).toEqual({ name: 'admin-jobs (prod-eu)', address: 'admin-jobs@corp.example' })
      expect(mail.messageId, kind).toMatch(/@corp\.example>$/)
      for (const pattern of expected[kind]!) expect(mail.text, `${kind} text: ${pattern}`).toMatch(pattern)
      // Nothing from outside the message: no remote image, script or stylesheet.
      expect(mail.html as string, kind).not.toMatch(/<script|src="https?:|<link /)
    }
    // The digest's summary comes before its full list.
    const digest = mails.get('expiry-digest')!.text!
    expect(digest.indexOf('Most urgent')).toBeLessThan(digest.indexOf('Expired and still active ('))
  })

  const skipped = hasChromium ? '' : ' (skipped: no /usr/bin/chromium)'
  it.skipIf(!hasChromium).each(Object.keys(expected))(
    `renders the %s email in Chromium as its text part says, within a desktop and a phone screen${skipped}`,
    async (kind) => {
      const mail = mails.get(kind)!
      // A mail client shows cid: parts from the message's own attachments.
      let html = mail.html as string
      for (const a of mail.attachments)
        if (a.cid)
          html = html.replaceAll(`cid:${a.cid}`, `data:${a.contentType};base64,${a.content.toString('base64')}`)
      for (const width of [760, 375]) {
        const page = await browser.newPage({ viewport: { width, height: 800 }, deviceScaleFactor: 2 })
        const outside: string[] = []
        page.on('request', (r) => {
          if (!r.url().startsWith('data:') && r.url() !== 'about:blank') outside.push(r.url())
        })
        await page.setContent(html)
        await page.waitForFunction(() => [...document.images].every((i) => i.complete))
        const shown = await page.evaluate(() => ({
          // biome-ignore lint/performance/useDomNodeTextContent: what the reader sees (hidden preview text left out)
          text: document.body.innerText,
          overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
          brokenImages: [...document.images].filter((i) => i.naturalWidth === 0).length,
        }))
        for (const pattern of expected[kind]!) expect(shown.text, `${kind} at ${width}px: ${pattern}`).toMatch(pattern)
        expect(shown.overflow, `${kind} is wider than a ${width}px screen`).toBeLessThanOrEqual(0)
        expect(shown.brokenImages, kind).toBe(0)
        expect(outside, kind).toEqual([])
        await page.screenshot({ path: screenshotPath(`email-${kind}${width < 500 ? '-phone' : ''}`), fullPage: true })
        await page.close()
      }
    },
  )
})
