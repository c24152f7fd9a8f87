import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runJobScript, runScript } from './support/run.ts'

const ok = 'test/fixtures/scripts/test/ok.ts'
const password = 'S3cretPw-never-printed'

let db: TestDatabase

beforeAll(async () => {
  db = await createTestDatabase('config_errors')
})

async function runCount(): Promise<number> {
  const [row] = await db.sql`select count(*)::int as n from jobs.runs`
  return row!.n
}

// Each case: the variables to set on top of a valid DATABASE_URL, the variable the message must name, and a fragment of it.
const cases: [string, Record<string, string>, string, RegExp][] = [
  [
    'a DATABASE_URL that is not a URL',
    { DATABASE_URL: `postgres://admin:${password}@db.example:notaport/app` },
    'DATABASE_URL',
    /is not a valid URL/,
  ],
  [
    'an SMTP_URL with the wrong scheme',
    { SMTP_URL: `http://mailer:${password}@127.0.0.1:25` },
    'SMTP_URL',
    /must use smtp:\/\/ or smtps:\/\//,
  ],
  [
    'a non-number AUDIT_LOG_RETENTION_DAYS',
    { AUDIT_LOG_RETENTION_DAYS: 'ninety' },
    'AUDIT_LOG_RETENTION_DAYS',
    /must be a whole number \(got "ninety"\)/,
  ],
  [
    'a bad ALERT_EMAIL_TO address',
    { ALERT_EMAIL_TO: 'ops@example.com, not-an-address' },
    'ALERT_EMAIL_TO',
    /invalid email address "not-an-address"/,
  ],
  ['a bad EXPIRY_NOTICE_DAYS', { EXPIRY_NOTICE_DAYS: '30,seven,1' }, 'EXPIRY_NOTICE_DAYS', /whole number/],
  [
    'a HEALTHCHECK_URLS entry that is not http(s)',
    { HEALTHCHECK_URLS: 'https://app.example/health,ftp://files.example' },
    'HEALTHCHECK_URLS',
    /entry 2 is not an http\(s\) URL/,
  ],
  ['a DRY_RUN that is not a boolean', { DRY_RUN: 'maybe' }, 'DRY_RUN', /must be true or false/],
  ['an ADMIN_JOBS_NOW that is not a timestamp', { ADMIN_JOBS_NOW: 'yesterday' }, 'ADMIN_JOBS_NOW', /not a timestamp/],
]

describe('a malformed environment', () => {
  it.each(cases)('refuses %s with exit 2, naming the variable, writing nothing', async (_, env, name, problem) => {
    const before = await runCount()
    const result = await runJobScript(ok, {
      // The password rides along in SMTP_URL so that every case also proves it is never printed.
      env: { DATABASE_URL: db.url, SMTP_URL: `smtp://mailer:${password}@127.0.0.1:25`, ...env },
    })
    expect(result.code, result.output).toBe(2)
    expect(result.stderr).toContain(`configuration error: ${name}`)
    expect(result.stderr).toMatch(problem)
    expect(result.output).not.toContain(password)
    expect(result.stdout).toBe('')
    expect(await runCount()).toBe(before)
  })

  it('refuses a job setting that is malformed, naming the variable', async () => {
    const result = await runJobScript('test/fixtures/scripts/test/tx.ts', {
      env: { DATABASE_URL: db.url, FIXTURE_HOLD_MS: '5s' },
    })
    expect(result.code, result.output).toBe(2)
    expect(result.stderr).toContain('configuration error: FIXTURE_HOLD_MS must be a whole number (got "5s")')
    expect(await runCount()).toBe(0)
  })

  it('refuses to fall back to the embedded database on CI when DATABASE_URL is missing', async () => {
    // GITHUB_ACTIONS=true is covered by the parseConfig unit tests; one real process proves the exit code.
    const result = await runScript(ok, { env: { CI: 'true', ADMIN_JOBS_DATA_DIR: '/nonexistent/never' } })
    expect(result.code, result.output).toBe(2)
    expect(result.stderr).toContain('DATABASE_URL is not set: it is required when CI=true')
  })

  it('reports a configuration error before trying to connect', async () => {
    // Nothing listens on port 1: a connection attempt would fail with exit 1, not 2.
    const result = await runJobScript(ok, {
      env: { DATABASE_URL: `postgres://admin:${password}@127.0.0.1:1/app`, EXPIRY_NOTICE_DAYS: '-1' },
    })
    expect(result.code, result.output).toBe(2)
    expect(result.stderr).toContain('EXPIRY_NOTICE_DAYS must be at least 0')
  })
})
