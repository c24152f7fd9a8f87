import type { ServerResponse } from 'node:http'
import { loadSchedules, runDoctor } from '@admin-jobs/sdk/platform'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { answer, checkAgainstOpenApi, type GitHubExchange } from './support/github.ts'
import { root, runCli } from './support/run.ts'
import { type CapturedRequest, type HttpCapture, type SmtpCapture, startHttp, startSmtp } from './support/servers.ts'

let db: TestDatabase
let smtp: SmtpCapture
let github: HttpCapture
const exchanges: GitHubExchange[] = []
let scopes: string | undefined = 'repo, workflow'
let disabled: string | undefined

/** GitHub's read-only endpoints the doctor calls, listing every shipped workflow (one disabled when asked). */
function fakeGitHub(req: CapturedRequest, res: ServerResponse) {
  const url = new URL(req.url, 'http://x')
  const headers: Record<string, string> = scopes === undefined ? {} : { 'x-oauth-scopes': scopes }
  const send = (status: number, body?: unknown) => answer(exchanges, req, res, status, body, headers)
  if (req.headers.authorization !== 'Bearer ghp_doctor') return send(401, { message: 'Bad credentials' })
  if (url.pathname === '/repos/acme/admin')
    return send(200, { default_branch: 'main', visibility: 'private', private: true })
  if (url.pathname === '/repos/acme/admin/actions/workflows') {
    const workflows = loadSchedules(root).map((s, i) => ({
      id: i + 1,
      name: s.job,
      path: s.workflowFile,
      state: s.workflowFile.endsWith(disabled ?? '-') ? 'disabled_manually' : 'active',
    }))
    return send(200, { total_count: workflows.length, workflows })
  }
  if (/\/actions\/workflows\/\d+\/runs$/.test(url.pathname)) return send(200, { total_count: 0, workflow_runs: [] })
  return send(404, { message: 'Not Found' })
}

beforeAll(async () => {
  db = await createTestDatabase('doctor')
  smtp = await startSmtp()
  github = await startHttp(fakeGitHub)
})
afterAll(async () => {
  await smtp.close()
  await github.close()
})

const env = (extra: Record<string, string | undefined> = {}) => ({
  DATABASE_URL: db.url,
  SMTP_URL: smtp.url,
  ALERT_EMAIL_TO: 'ops@example.com',
  GITHUB_TOKEN: 'ghp_doctor',
  GITHUB_REPOSITORY: 'acme/admin',
  GITHUB_API_URL: github.url,
  ...extra,
})
const byName = <T extends { name: string }>(checks: T[]) => new Map(checks.map((c) => [c.name, c]))

describe('pnpm jobs doctor', () => {
  it('passes a deployment whose database, mail server, token and workflows all answer', async () => {
    const checks = await runDoctor(env(), { root, plan: '20000' })
    expect(checks.filter((c) => !c.ok)).toEqual([])
    const c = byName(checks)
    expect(c.get('database')?.detail).toMatch(/reachable, PostgreSQL \d+/)
    expect(c.get('database TLS')?.detail).toContain('not encrypted (a local server)')
    expect(c.get('migrations')?.detail).toBe('up to date')
    expect(c.get('SMTP')?.detail).toContain('answered the handshake')
    expect(c.get('GitHub token')?.detail).toContain('classic token with scopes repo, workflow')
    expect(c.get('workflows on GitHub')?.detail).toMatch(/^all \d+ present and enabled$/)
    expect(c.get('Actions minutes')?.detail).toMatch(/min\/month estimated against 20,000 included/)
  })

  it('fails, each with its fix, a bad Slack URL, an unreachable mail server, a weak token, a disabled workflow and the free plan', async () => {
    scopes = 'read:org'
    disabled = 'backups-database.yml'
    try {
      const checks = await runDoctor(
        env({ SLACK_WEBHOOK_URL: 'https://example.com/hook', SMTP_URL: 'smtp://127.0.0.1:9' }),
        { root },
      )
      const failed = checks.filter((c) => !c.ok).map((c) => c.name)
      expect(failed).toEqual(['SMTP', 'Slack', 'GitHub token', 'workflows on GitHub', 'Actions minutes'])
      const c = byName(checks)
      expect(c.get('workflows on GitHub')?.detail).toContain('.github/workflows/backups-database.yml disabled_manually')
      expect(c.get('Actions minutes')?.detail).toContain('against 2,000 included (free)')
      expect(checks.every((x) => x.ok || x.fix)).toBe(true)
    } finally {
      scopes = 'repo, workflow'
      disabled = undefined
    }
  })

  it('says what it can prove of a fine-grained token, whose write access cannot be read back', async () => {
    scopes = undefined
    try {
      const token = byName(await runDoctor(env(), { root, plan: 'team' })).get('GitHub token')!
      expect(token.ok).toBe(true)
      expect(token.detail).toContain('cannot be read back without writing')
    } finally {
      scopes = 'repo, workflow'
    }
  })

  it('sends one test message through the outbox with --send-test', async () => {
    const test = byName(await runDoctor(env(), { root, sendTest: true, plan: '20000' })).get('test message')!
    expect(test).toMatchObject({ ok: true, detail: expect.stringContaining('1 sent') })
    const [mail] = await smtp.waitFor(1)
    expect(mail!.subject).toBe('[test] admin-jobs doctor')
  })

  it('prints one line per check and exits 1 when one fails (no token), as JSON with --json', async () => {
    const result = await runCli(['doctor', '--json'], { env: env({ GITHUB_TOKEN: '' }) })
    expect(result.code, result.stderr).toBe(1)
    const report = JSON.parse(result.stdout)
    expect(report.ok).toBe(false)
    expect(report.checks.find((c: { name: string }) => c.name === 'GitHub token')).toMatchObject({ ok: false })
    const text = await runCli(['doctor'], { env: env({ GITHUB_TOKEN: '' }) })
    expect(text.stdout).toMatch(/^✓ configuration/m)
    expect(text.stdout).toMatch(/^✗ GitHub token .*\(fix: set GITHUB_TOKEN/m)
  })

  it('talks to GitHub only through GET endpoints of its OpenAPI description', () => {
    const { problems, operations } = checkAgainstOpenApi(exchanges)
    expect(problems).toEqual([])
    expect(operations.every((o) => o.startsWith('GET '))).toBe(true)
  })
})
