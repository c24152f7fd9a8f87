import { createServer } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript } from './support/run.ts'
import { type HttpCapture, type SmtpCapture, startHttp, startSmtp } from './support/servers.ts'

const failing = 'test/fixtures/scripts/test/fail.ts'

let db: TestDatabase
let smtp: SmtpCapture
let slack: HttpCapture

beforeAll(async () => {
  db = await createTestDatabase('alerts_delivery')
  smtp = await startSmtp()
  slack = await startHttp()
})

afterAll(async () => {
  await smtp?.close()
  await slack?.close()
})

beforeEach(async () => {
  await db.sql`delete from jobs.incidents`
  await db.sql`truncate jobs.messages cascade`
  smtp.messages.length = 0
  slack.requests.length = 0
  slack.setHandler((_req, res) => void res.end('ok'))
})

function channels(extra: Record<string, string> = {}) {
  return {
    DATABASE_URL: db.url,
    SMTP_URL: smtp.url,
    ALERT_EMAIL_TO: 'ops@example.com,oncall@example.com',
    ALERT_EMAIL_FROM: 'jobs@example.com',
    SLACK_WEBHOOK_URL: `${slack.url}/hook`,
    ...extra,
  }
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

describe('alerts of a critical job', () => {
  it('emails and posts to Slack naming the job, the outcome and the first line of the error', async () => {
    const result = await runScript(failing, { env: channels() })
    expect(result.code, result.output).toBe(1)
    const [mail] = await smtp.waitFor(1)
    expect(mail!.subject).toBe('[critical] test/fail failed')
    expect(mail!.from?.value[0]).toMatchObject({
      address: 'jobs@example.com',
      name: expect.stringMatching(/^admin-jobs \(.+\)$/),
    })
    expect(mail!.to).toMatchObject({ text: 'ops@example.com, oncall@example.com' })
    expect(mail!.text).toContain('widget sync failed: upstream said no')
    expect(mail!.text).not.toContain('second line of detail')
    expect(mail!.text).toContain('job: test/fail')
    expect(mail!.text).toContain('outcome: failed')
    const [post] = await slack.waitFor(1)
    expect(post!.method).toBe('POST')
    expect(post!.url).toBe('/hook')
    const body = post!.json()
    expect(body.text).toContain('test/fail failed')
    expect(JSON.stringify(body.blocks)).toContain('widget sync failed: upstream said no')
    expect(JSON.stringify(body.blocks)).toContain('*outcome*\\nfailed')
    const [state] = await db.sql`select * from jobs.incidents where key = 'job:test/fail'`
    expect(state).toMatchObject({ status: 'open', notifications: 1 })
  })

  it('sends nothing for the second failure of a streak, then one recovery notice when the job succeeds', async () => {
    expect((await runScript(failing, { env: channels() })).code).toBe(1)
    await smtp.waitFor(1)
    await slack.waitFor(1)
    const second = await runScript(failing, { env: channels() })
    expect(second.code).toBe(1)
    expect(second.stdout).toContain('alert suppressed (incident already notified)')
    expect(smtp.messages).toHaveLength(1)
    expect(slack.requests).toHaveLength(1)

    const recovered = await runScript(failing, { env: channels({ FIXTURE_OUTCOME: 'succeed' }) })
    expect(recovered.code, recovered.output).toBe(0)
    const mails = await smtp.waitFor(2)
    expect(mails[1]!.subject).toBe('[resolved] test/fail recovered')
    const posts = await slack.waitFor(2)
    expect(posts[1]!.json().text).toContain('test/fail recovered')

    // Succeeding again sends no second notice; the next failure opens a new incident and alerts again.
    expect((await runScript(failing, { env: channels({ FIXTURE_OUTCOME: 'succeed' }) })).code).toBe(0)
    expect(smtp.messages).toHaveLength(2)
    expect((await runScript(failing, { env: channels() })).code).toBe(1)
    expect((await smtp.waitFor(3))[2]!.subject).toBe('[critical] test/fail failed')
    const sent = await db.sql`select kind from jobs.messages where job = 'test/fail' order by id desc limit 3`
    expect(sent.map((a) => a.kind)).toEqual(['alert', 'recovery', 'alert'])
  })

  it('alerts when a critical job times out, naming the timeout', async () => {
    const result = await runScript('test/fixtures/scripts/test/stuck.ts', { env: channels() })
    expect(result.code, result.output).toBe(124)
    const [mail] = await smtp.waitFor(1)
    expect(mail!.subject).toBe('[critical] test/stuck timed out')
    expect(mail!.text).toContain('timed out after 1.0s')
    expect(mail!.text).toContain('outcome: timed_out')
    expect((await slack.waitFor(1))[0]!.json().text).toContain('test/stuck timed out')
  })

  it('links the Actions run in the email and in Slack', async () => {
    const result = await runScript(failing, {
      env: channels({
        GITHUB_ACTIONS: 'true',
        GITHUB_REPOSITORY: 'acme/admin',
        GITHUB_RUN_ID: '4242',
        GITHUB_RUN_ATTEMPT: '1',
        GITHUB_EVENT_NAME: 'schedule',
      }),
    })
    expect(result.code, result.output).toBe(1)
    const url = 'https://github.com/acme/admin/actions/runs/4242/attempts/1'
    expect((await smtp.waitFor(1))[0]!.text).toContain(`View the run: ${url}`)
    expect(JSON.stringify((await slack.waitFor(1))[0]!.json().blocks)).toContain(`<${url}|View run>`)
  })

  it('keeps the job outcome when every channel is down, and delivers the queued alert once they are back', async () => {
    slack.setHandler((_req, res) => {
      res.statusCode = 500
      res.end('internal error')
    })
    const env = channels({ SMTP_URL: `smtp://127.0.0.1:${await closedPort()}` })
    const failed = await runScript(failing, { env })
    expect(failed.code, failed.output).toBe(1)
    expect(failed.stderr).toMatch(/slack delivery failed; the message stays queued/)
    expect(failed.stderr).toMatch(/email delivery failed; the message stays queued/)
    // The webhook was tried a bounded number of times.
    expect(slack.requests.length).toBeGreaterThanOrEqual(2)
    expect(slack.requests.length).toBeLessThanOrEqual(3)
    const [run] = await db.sql`select status from jobs.runs where job = 'test/fail' order by id desc limit 1`
    expect(run!.status).toBe('failed')

    // The alert stays queued; once the channels answer again (and its retry is due), the next run delivers it, once.
    slack.setHandler((_req, res) => void res.end('ok'))
    await db.sql`update jobs.deliveries set next_attempt_at = now() where status = 'pending'`
    expect((await runScript(failing, { env: channels() })).code).toBe(1)
    expect((await smtp.waitFor(1))[0]!.subject).toBe('[critical] test/fail failed')
    expect(smtp.messages).toHaveLength(1)
    slack.setHandler((_req, res) => {
      res.statusCode = 500
      res.end('internal error')
    })

    const recovered = await runScript(failing, { env: { ...env, FIXTURE_OUTCOME: 'succeed' } })
    expect(recovered.code, recovered.output).toBe(0)
    expect(recovered.stderr).toMatch(/(slack|email) delivery failed; the message stays queued/)
    const [last] = await db.sql`select status from jobs.runs where job = 'test/fail' order by id desc limit 1`
    expect(last!.status).toBe('succeeded')
  })

  it('masks secrets quoted by the error in the email and the Slack message', async () => {
    const result = await runScript('test/fixtures/scripts/test/leaky.ts', { env: channels() })
    expect(result.code, result.output).toBe(1)
    const [mail] = await smtp.waitFor(1)
    expect(mail!.text).toContain('could not reach ***')
    const [post] = await slack.waitFor(1)
    expect(post!.body).toContain('could not reach ***')
    expect(`${mail!.text}${post!.body}`).not.toContain(slack.url)
  })

  it('sends nothing in a dry run', async () => {
    const result = await runScript(failing, { args: ['--dry-run'], env: channels() })
    expect(result.code).toBe(1)
    await new Promise((r) => setTimeout(r, 200))
    expect(smtp.messages).toHaveLength(0)
    expect(slack.requests).toHaveLength(0)
  })
})
