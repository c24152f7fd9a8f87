import {
  AbortedError,
  backoffDelay,
  ConfigError,
  formatMs,
  isTransient,
  NonRetryableError,
  retry,
  toMs,
} from '@admin-jobs/sdk'
import {
  createMasker,
  detectTrigger,
  jobIdFromFile,
  parseConfig,
  parseFlags,
  redactUrl,
  renderRunSummary,
  runUrlOf,
} from '@admin-jobs/sdk/platform'
import { describe, expect, it } from 'vitest'

describe('parseFlags', () => {
  it('reads --dry-run and the flags a job declares', () => {
    expect(parseFlags(['--dry-run'])).toEqual({ 'dry-run': true })
    expect(parseFlags(['--dry-run=false'])).toEqual({ 'dry-run': false })
    const declared = { force: 'boolean', period: 'string' } as const
    expect(parseFlags(['--period', '2026-11', '--force'], declared)).toEqual({ period: '2026-11', force: true })
    expect(parseFlags(['--period=2026-10'], declared)).toEqual({ period: '2026-10' })
  })

  it('refuses unknown flags, positional arguments and missing values as configuration errors', () => {
    expect(() => parseFlags(['--frobnicate'])).toThrow(ConfigError)
    expect(() => parseFlags(['--frobnicate'])).toThrow(/unknown flag --frobnicate \(flags: --dry-run\)/)
    expect(() => parseFlags(['now'])).toThrow(/unexpected argument "now"/)
    expect(() => parseFlags(['--period'], { period: 'string' })).toThrow('--period needs a value')
    expect(() => parseFlags(['--period', '--dry-run'], { period: 'string' })).toThrow('--period needs a value')
    expect(() => parseFlags(['--dry-run=yes'])).toThrow('--dry-run takes no value')
  })
})

describe('the run trigger and URL', () => {
  const actions = (extra: Record<string, string> = {}) =>
    parseConfig({
      GITHUB_ACTIONS: 'true',
      DATABASE_URL: 'postgres://db/app',
      GITHUB_REPOSITORY: 'acme/admin',
      GITHUB_RUN_ID: '99',
      ...extra,
    })

  it('is local outside Actions, the event on Actions, rerun from the second attempt on', () => {
    expect(detectTrigger({}, parseConfig({}))).toBe('local')
    expect(detectTrigger({}, actions({ GITHUB_EVENT_NAME: 'schedule' }))).toBe('schedule')
    expect(detectTrigger({}, actions({ GITHUB_EVENT_NAME: 'workflow_dispatch' }))).toBe('workflow_dispatch')
    expect(detectTrigger({}, actions({ GITHUB_EVENT_NAME: 'schedule', GITHUB_RUN_ATTEMPT: '2' }))).toBe('rerun')
    expect(detectTrigger({ ADMIN_JOBS_TRIGGER: 'scheduler' }, parseConfig({}))).toBe('scheduler')
  })

  it('links the run attempt on Actions and nothing locally', () => {
    expect(runUrlOf(parseConfig({}))).toBeUndefined()
    expect(runUrlOf(actions({ GITHUB_RUN_ATTEMPT: '3' }))).toBe(
      'https://github.com/acme/admin/actions/runs/99/attempts/3',
    )
    expect(runUrlOf(actions({ GITHUB_SERVER_URL: 'https://ghe.example/' }))).toBe(
      'https://ghe.example/acme/admin/actions/runs/99/attempts/1',
    )
  })
})

describe('jobIdFromFile', () => {
  it('takes the path under scripts/ without the extension', () => {
    expect(jobIdFromFile('/repo/scripts/cleanup/sessions.ts')).toBe('cleanup/sessions')
    expect(jobIdFromFile('/repo/test/fixtures/scripts/test/ok.ts')).toBe('test/ok')
    expect(jobIdFromFile('C:\\repo\\scripts\\reports\\daily.mts')).toBe('reports/daily')
    expect(() => jobIdFromFile('/repo/sdk/src/runner.ts')).toThrow(ConfigError)
  })
})

describe('retries', () => {
  it('classifies transient errors by code and status, never by message', () => {
    expect(isTransient(Object.assign(new Error('x'), { code: '40001' }))).toBe(true)
    expect(isTransient(Object.assign(new Error('x'), { code: '40P01' }))).toBe(true)
    expect(isTransient(Object.assign(new Error('x'), { code: '08006' }))).toBe(true)
    expect(isTransient(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe(true)
    expect(isTransient(Object.assign(new Error('x'), { status: 503 }))).toBe(true)
    expect(isTransient(Object.assign(new Error('x'), { status: 429 }))).toBe(true)
    expect(isTransient(new Error('wrapped', { cause: Object.assign(new Error('x'), { code: '57P01' }) }))).toBe(true)
    expect(isTransient(Object.assign(new Error('x'), { code: '23505' }))).toBe(false)
    expect(isTransient(Object.assign(new Error('x'), { status: 404 }))).toBe(false)
    expect(isTransient(new Error('deadlock detected, please retry'))).toBe(false)
    expect(isTransient(Object.assign(new NonRetryableError('x'), { code: '40001' }))).toBe(false)
    expect(isTransient(new AbortedError('timed out'))).toBe(false)
  })

  it('backs off exponentially with jitter between half and all of the capped ceiling', () => {
    expect(backoffDelay(1, 1000, 30_000, () => 0)).toBe(500)
    expect(backoffDelay(1, 1000, 30_000, () => 1)).toBe(1000)
    expect(backoffDelay(3, 1000, 30_000, () => 1)).toBe(4000)
    expect(backoffDelay(10, 1000, 30_000, () => 1)).toBe(30_000)
  })

  it('retries transient failures up to the attempt limit and stops at the first permanent one', async () => {
    const seen: number[] = []
    const transient = Object.assign(new Error('busy'), { code: '40001' })
    await expect(
      retry({ attempts: 3, minDelay: 1, maxDelay: 2 }, async (n) => {
        seen.push(n)
        throw transient
      }),
    ).rejects.toBe(transient)
    expect(seen).toEqual([1, 2, 3])
    let calls = 0
    await expect(
      retry({ attempts: 5, minDelay: 1 }, async () => {
        calls++
        throw new Error('permanent')
      }),
    ).rejects.toThrow('permanent')
    expect(calls).toBe(1)
    expect(await retry({ attempts: 3, minDelay: 1 }, async (n) => (n < 2 ? Promise.reject(transient) : n))).toBe(2)
  })

  it('does not start a wait that would end after the deadline, and stops waiting when aborted', async () => {
    const transient = Object.assign(new Error('busy'), { code: '40001' })
    let calls = 0
    const started = Date.now()
    await expect(
      retry({ attempts: 5, minDelay: '10s', deadline: Date.now() + 1000 }, async () => {
        calls++
        throw transient
      }),
    ).rejects.toBe(transient)
    expect(calls).toBe(1)
    expect(Date.now() - started).toBeLessThan(5000) // the refused wait was 10 s
    const controller = new AbortController()
    setTimeout(() => controller.abort(new AbortedError('stop')), 20)
    await expect(
      retry({ attempts: 5, minDelay: '10s', signal: controller.signal }, async () => {
        throw transient
      }),
    ).rejects.toThrow('stop')
  })
})

describe('masking and summaries', () => {
  it('redacts URL passwords and masks secrets, longest first', () => {
    expect(redactUrl('connect postgres://app:hunter22@db:5432/x failed')).toBe(
      'connect postgres://app:***@db:5432/x failed',
    )
    const mask = createMasker(['abc', 'token-1234', 'token-1234-long'])
    expect(mask('a token-1234-long and token-1234 and abc')).toBe('a *** and *** and abc')
  })

  it('renders the outcome, duration, dry-run flag, stats and the error first line', () => {
    const md = renderRunSummary({
      job: 'cleanup/sessions',
      status: 'timed_out',
      durationMs: 61_000,
      dryRun: true,
      stats: { deleted: 5, detail: { a: 1 } },
      error: new Error('timed out after 1m 00s\nmore'),
      parts: ['extra part'],
    })
    expect(md).toContain('### ⏱️ cleanup/sessions: timed out (dry run)')
    expect(md).toContain('| Duration | 1m 01s |')
    expect(md).toContain('| deleted | 5 |')
    expect(md).toContain('| detail | `{"a":1}` |')
    expect(md).toContain('> **Error:** timed out after 1m 00s')
    expect(md).not.toContain('more')
    expect(md.trimEnd().endsWith('extra part')).toBe(true)
  })

  it('parses and formats durations', () => {
    expect(toMs('15m')).toBe(900_000)
    expect(toMs('500ms')).toBe(500)
    expect(toMs(1500)).toBe(1500)
    expect(() => toMs('soon')).toThrow(TypeError)
    expect(formatMs(850)).toBe('850ms')
    expect(formatMs(12_340)).toBe('12.3s')
    expect(formatMs(7_380_000)).toBe('2h 03m')
  })
})
