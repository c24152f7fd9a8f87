import os from 'node:os'
import { ConfigError } from '@admin-jobs/sdk'
import { createEnvReader, parseConfig } from '@admin-jobs/sdk/platform'
import { describe, expect, it } from 'vitest'

function configError(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError')
}

describe('parseConfig', () => {
  it('applies the documented defaults to an empty environment', () => {
    const config = parseConfig({}, '/srv/app')
    expect(config).toMatchObject({
      databaseUrl: undefined,
      smtpUrl: undefined,
      slackWebhookUrl: undefined,
      alertEmailTo: [],
      alertEmailFrom: `admin-jobs@${os.hostname()}`,
      healthcheckUrls: [],
      dataDir: '/srv/app/.data',
      reportsDir: '/srv/app/.data/reports',
      archiveDir: '/srv/app/.data/archive',
      backupDir: '/srv/app/.data/backups',
      auditLogRetentionDays: 90,
      expiryNoticeDays: [30, 7, 1],
      ci: false,
      actions: false,
      dryRun: false,
      secrets: [],
    })
    expect(config.github).toMatchObject({ runAttempt: 1, apiUrl: 'https://api.github.com' })
  })

  it('reads every shared variable', () => {
    const config = parseConfig(
      {
        DATABASE_URL: 'postgres://app:pw1234@db:5432/admin',
        SLACK_WEBHOOK_URL: 'https://hooks.slack.example/T/B/x',
        SMTP_URL: 'smtps://mail:pw5678@smtp.example:465',
        ALERT_EMAIL_FROM: 'jobs@example.com',
        ALERT_EMAIL_TO: ' ops@example.com ,sec@example.com ',
        HEALTHCHECK_URLS: 'https://a.example/health, http://b.example:8080/ping',
        AUDIT_LOG_RETENTION_DAYS: '30',
        EXPIRY_NOTICE_DAYS: '1,14,7,14',
        REPORTS_DIR: 'out/reports',
        DRY_RUN: 'TRUE',
        GITHUB_ACTIONS: 'true',
        GITHUB_RUN_ATTEMPT: '3',
        GITHUB_REPOSITORY: 'acme/admin',
        GITHUB_API_URL: 'https://ghe.example/api/v3/',
      },
      '/srv/app',
    )
    expect(config.databaseUrl).toBe('postgres://app:pw1234@db:5432/admin')
    expect(config.alertEmailTo).toEqual(['ops@example.com', 'sec@example.com'])
    expect(config.alertEmailFrom).toBe('jobs@example.com')
    expect(config.healthcheckUrls).toEqual(['https://a.example/health', 'http://b.example:8080/ping'])
    expect(config.auditLogRetentionDays).toBe(30)
    expect(config.expiryNoticeDays).toEqual([14, 7, 1])
    expect(config.reportsDir).toBe('/srv/app/out/reports')
    expect(config.dryRun).toBe(true)
    expect(config.actions).toBe(true)
    expect(config.github).toMatchObject({
      runAttempt: 3,
      repository: 'acme/admin',
      apiUrl: 'https://ghe.example/api/v3',
    })
  })

  it('collects secret values and the passwords inside secret URLs, for masking', () => {
    const config = parseConfig({
      DATABASE_URL: 'postgres://app:p%40ss-word@db/admin',
      SLACK_WEBHOOK_URL: 'https://hooks.slack.example/T/B/x',
      GITHUB_TOKEN: 'ghp_abcdef123456',
    })
    expect(config.secrets).toEqual(
      expect.arrayContaining([
        'postgres://app:p%40ss-word@db/admin',
        'p@ss-word',
        'https://hooks.slack.example/T/B/x',
        'ghp_abcdef123456',
      ]),
    )
  })

  it('returns a deeply frozen object', () => {
    const config = parseConfig({ ALERT_EMAIL_TO: 'ops@example.com' })
    expect(Object.isFrozen(config)).toBe(true)
    expect(Object.isFrozen(config.github)).toBe(true)
    expect(() => (config.alertEmailTo as string[]).push('x@example.com')).toThrow(TypeError)
  })

  it('treats empty and blank values as unset', () => {
    const config = parseConfig({ DATABASE_URL: '', SMTP_URL: '  ', AUDIT_LOG_RETENTION_DAYS: '' })
    expect(config.databaseUrl).toBeUndefined()
    expect(config.smtpUrl).toBeUndefined()
    expect(config.auditLogRetentionDays).toBe(90)
  })

  it('names the variable in every error and redacts URL passwords in the message', () => {
    const bad = configError(() => parseConfig({ SMTP_URL: 'ftp://u:topsecret@mail.example' }))
    expect(bad.variable).toBe('SMTP_URL')
    expect(bad.message).toContain('ftp://u:***@mail.example')
    expect(bad.message).not.toContain('topsecret')
    expect(configError(() => parseConfig({ GITHUB_REPOSITORY: 'no-slash' })).variable).toBe('GITHUB_REPOSITORY')
    expect(configError(() => parseConfig({ GITHUB_RUN_ATTEMPT: '0' })).variable).toBe('GITHUB_RUN_ATTEMPT')
    expect(configError(() => parseConfig({ ALERT_EMAIL_FROM: 'jobs at example' })).variable).toBe('ALERT_EMAIL_FROM')
    expect(configError(() => parseConfig({ CI: 'true' })).variable).toBe('DATABASE_URL')
    expect(configError(() => parseConfig({ GITHUB_ACTIONS: 'true' })).message).toMatch(
      /^DATABASE_URL is not set: it is required when GITHUB_ACTIONS=true/,
    )
    expect(configError(() => parseConfig({ DATABASE_URL: 'mysql://db/app' })).message).toMatch(
      /^DATABASE_URL must use postgres:\/\/ or postgresql:\/\//,
    )
    expect(configError(() => parseConfig({ AUDIT_LOG_RETENTION_DAYS: '0' })).message).toBe(
      'AUDIT_LOG_RETENTION_DAYS must be at least 1 (got 0)',
    )
    // A stray % in a password would make the client fail later with a bare "URI malformed".
    const badEscape = configError(() => parseConfig({ DATABASE_URL: 'postgres://app:SEC%RET@db.example/app' }))
    expect(badEscape.variable).toBe('DATABASE_URL')
    expect(badEscape.message).toMatch(/malformed %-escape .*write a literal % as %25/)
    expect(badEscape.message).not.toContain('SEC%RET')
  })

  it('sends from admin-jobs at the admins’ domain when ALERT_EMAIL_FROM is unset, and from ALERT_EMAIL_FROM when set', () => {
    expect(parseConfig({ ALERT_EMAIL_TO: 'ops@corp.example, oncall@pager.example' }).alertEmailFrom).toBe(
      'admin-jobs@corp.example',
    )
    expect(
      parseConfig({ ALERT_EMAIL_TO: 'ops@corp.example', ALERT_EMAIL_FROM: 'robot@mail.example' }).alertEmailFrom,
    ).toBe('robot@mail.example')
  })
  it('gives CI a meaning only when it is true: a CI system that sets it to its own name is not an error', () => {
    expect(parseConfig({ CI: 'woodpecker', DATABASE_URL: 'postgres://db/app' }).databaseUrl).toBe('postgres://db/app')
    expect(parseConfig({ CI: 'woodpecker' }).databaseUrl).toBeUndefined()
    expect(configError(() => parseConfig({ CI: 'TRUE' })).variable).toBe('DATABASE_URL')
  })
})

describe('createEnvReader', () => {
  const read = createEnvReader({
    COUNT: '42',
    NEG: '-3',
    RATIO: '0.75',
    FLAG: 'yes',
    LIST: 'a, b,,c',
    DAYS: '30,7',
    WAIT: '90',
    WAIT2: '2m',
    MODE: 'fast',
    HOOK: 'https://example.com/x',
  })

  it('reads whole numbers, numbers, booleans, lists and durations', () => {
    expect(read.integer('COUNT', 1)).toBe(42)
    expect(read.integer('MISSING', 7)).toBe(7)
    expect(read.integer('NEG', 0)).toBe(-3)
    expect(read.number('RATIO', 1)).toBe(0.75)
    expect(read.boolean('FLAG', false)).toBe(true)
    expect(read.list('LIST')).toEqual(['a', 'b', 'c'])
    expect(read.integerList('DAYS', [1])).toEqual([30, 7])
    expect(read.duration('WAIT', '1s')).toBe(90_000)
    expect(read.duration('WAIT2', '1s')).toBe(120_000)
    expect(read.duration('MISSING', '5m')).toBe(300_000)
    expect(read.oneOf('MODE', ['fast', 'slow'], 'slow')).toBe('fast')
    expect(read.url('HOOK', ['https'])).toBe('https://example.com/x')
    expect(read.string('MISSING', 'fallback')).toBe('fallback')
  })

  it('rejects garbage instead of silently defaulting', () => {
    const bad = createEnvReader({ N: '12abc', R: '1e3', B: 'maybe', D: 'soon', M: 'medium', L: '1,,2', U: 'not a url' })
    expect(configError(() => bad.integer('N', 1)).message).toBe('N must be a whole number (got "12abc")')
    expect(configError(() => bad.number('R', 1)).variable).toBe('R')
    expect(configError(() => bad.boolean('B', false)).message).toBe('B must be true or false (got "maybe")')
    expect(configError(() => bad.duration('D', '1s')).message).toMatch(/^D must be a duration/)
    expect(configError(() => bad.oneOf('M', ['fast', 'slow'], 'fast')).message).toBe(
      'M must be one of fast, slow (got "medium")',
    )
    expect(configError(() => bad.integerList('L', [])).variable).toBe('L')
    expect(configError(() => bad.url('U', ['https'])).message).toMatch(/^U is not a valid URL/)
  })

  it('enforces ranges', () => {
    expect(configError(() => read.integer('COUNT', 1, { max: 10 })).message).toBe('COUNT must be at most 10 (got 42)')
    expect(configError(() => read.integer('NEG', 1, { min: 0 })).message).toBe('NEG must be at least 0 (got -3)')
  })
})
