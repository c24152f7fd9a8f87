import type { ServerResponse } from 'node:http'
import { createGitHubClient, nextLink } from '@admin-jobs/sdk/platform'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { createOpsRoot, type OpsRoot } from './support/ops-root.ts'
import { runScript } from './support/run.ts'
import { type CapturedRequest, type HttpCapture, type SmtpCapture, startHttp, startSmtp } from './support/servers.ts'

let db: TestDatabase
let smtp: SmtpCapture
let github: HttpCapture
let ops: OpsRoot
const now = '2026-11-28T12:40:00Z'
const token = 'ghs_watchdogtesttoken123'

/** Workflow states the fake API serves; enabling one makes it active, like GitHub does. */
let states: Record<number, string>
let failWith: number | undefined

const workflows = () => [
  { id: 11, name: 'cleanup/sessions', path: '.github/workflows/cleanup-sessions.yml', state: states[11] },
  { id: 22, name: 'reports/daily', path: '.github/workflows/reports-daily.yml', state: states[22] },
  { id: 33, name: 'cleanup/tokens', path: '.github/workflows/cleanup-tokens.yml', state: states[33] },
  { id: 44, name: 'CI', path: '.github/workflows/ci.yml', state: 'active' },
]

/** Answers like GitHub's REST API for the endpoints the watchdog uses (paginated workflow list included). */
function fakeGitHub(req: CapturedRequest, res: ServerResponse) {
  const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers })
    res.end(body === undefined ? '' : JSON.stringify(body))
  }
  if (req.headers.authorization !== `Bearer ${token}`) return send(401, { message: 'Bad credentials' })
  if (failWith) return send(failWith, { message: 'Resource not accessible by integration' })
  const url = new URL(req.url, 'http://x')
  if (req.method === 'GET' && url.pathname === '/repos/acme/admin') return send(200, { default_branch: 'trunk' })
  if (req.method === 'GET' && url.pathname === '/repos/acme/admin/actions/workflows') {
    const all = workflows()
    const page = Number(url.searchParams.get('page') ?? '1')
    if (page === 1) {
      const next = `<http://${req.headers.host}/repos/acme/admin/actions/workflows?per_page=2&page=2>; rel="next"`
      return send(200, { total_count: all.length, workflows: all.slice(0, 2) }, { link: next })
    }
    return send(200, { total_count: all.length, workflows: all.slice(2) })
  }
  const enable = /^\/repos\/acme\/admin\/actions\/workflows\/(\d+)\/enable$/.exec(url.pathname)
  if (req.method === 'PUT' && enable) {
    states[Number(enable[1])] = 'active'
    return send(204)
  }
  if (req.method === 'POST' && /^\/repos\/acme\/admin\/actions\/workflows\/\d+\/dispatches$/.test(url.pathname)) {
    return send(204)
  }
  return send(404, { message: 'Not Found' })
}

beforeAll(async () => {
  db = await createTestDatabase('watchdog_github')
  smtp = await startSmtp()
  github = await startHttp(fakeGitHub)
  ops = createOpsRoot('watchdog-gh')
  ops.writeWorkflows([
    { job: 'cleanup/sessions', cron: ['7 */6 * * *'] },
    { job: 'reports/daily', cron: ['0 1 * * *'] },
    { job: 'cleanup/tokens', cron: ['0 3 * * *'] },
  ])
  // Every job is two weeks behind: the schedule stopped when GitHub (or someone) disabled the workflows.
  for (const job of ['cleanup/sessions', 'reports/daily', 'cleanup/tokens']) {
    await db.sql`insert into jobs.runs (job, status, trigger, started_at, finished_at)
                 values (${job}, 'succeeded', 'schedule', '2026-11-14T03:00:00Z', '2026-11-14T03:00:05Z')`
  }
})
afterAll(async () => {
  await smtp.close()
  await github.close()
})

function watchdog(args: string[] = []) {
  return runScript('scripts/monitoring/watchdog.ts', {
    args,
    env: {
      DATABASE_URL: db.url,
      ADMIN_JOBS_ROOT: ops.dir,
      ADMIN_JOBS_NOW: now,
      SMTP_URL: smtp.url,
      ALERT_EMAIL_TO: 'ops@example.com',
      GITHUB_TOKEN: token,
      GITHUB_REPOSITORY: 'acme/admin',
      GITHUB_API_URL: github.url,
    },
  })
}

const changes = () => github.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.url}`)

describe('monitoring/watchdog and the GitHub API', () => {
  it('changes nothing in a dry run', async () => {
    states = { 11: 'active', 22: 'disabled_inactivity', 33: 'disabled_manually' }
    const result = await watchdog(['--dry-run'])
    expect(result.code, result.output).toBe(0)
    expect(changes()).toEqual([])
    expect(result.output).toContain('would re-enable')
    expect(smtp.messages).toHaveLength(0)
  })

  it('re-enables a workflow disabled for inactivity, dispatches a catch-up run, and leaves a manual disable alone', async () => {
    github.requests.length = 0
    const result = await watchdog()
    expect(result.code, result.output).toBe(0)
    expect(changes()).toEqual([
      'PUT /repos/acme/admin/actions/workflows/22/enable',
      'POST /repos/acme/admin/actions/workflows/22/dispatches',
    ])
    const dispatch = github.requests.find((r) => r.method === 'POST')!
    expect(dispatch.json()).toEqual({ ref: 'trunk' })
    expect(github.requests.some((r) => r.url.includes('/workflows/33'))).toBe(false)
    expect(github.requests.filter((r) => r.url.includes('page=2'))).toHaveLength(1)

    await smtp.waitFor(3)
    await new Promise((r) => setTimeout(r, 200))
    const subjects = smtp.messages.map((m) => m.subject).sort()
    expect(subjects).toEqual([
      '[warning] .github/workflows/cleanup-tokens.yml is disabled manually',
      '[warning] .github/workflows/reports-daily.yml was disabled by GitHub for inactivity',
      // The active workflow's job is simply late, and reported as missed.
      '[warning] cleanup/sessions missed its scheduled run',
    ])
    const [action] = await db.sql`select workflow, action, detail from jobs.watchdog_actions`
    expect(action).toMatchObject({ workflow: '.github/workflows/reports-daily.yml', action: 'reenabled' })
    expect(result.output).not.toContain(token)
  })

  it('does not dispatch again or repeat the manual-disable report on the next run', async () => {
    github.requests.length = 0
    const before = smtp.messages.length
    const result = await watchdog()
    expect(result.code, result.output).toBe(0)
    expect(changes()).toEqual([])
    await new Promise((r) => setTimeout(r, 300))
    // reports/daily is active again but its catch-up run has not started: now it is a missed run.
    expect(smtp.messages.slice(before).map((m) => m.subject)).toEqual([
      '[warning] reports/daily missed its scheduled run',
    ])
  })

  it('sends one notice when the manually disabled workflow is enabled again', async () => {
    states[33] = 'active'
    const before = smtp.messages.length
    expect((await watchdog()).code).toBe(0)
    await smtp.waitFor(before + 1)
    await new Promise((r) => setTimeout(r, 300))
    const subjects = smtp.messages.slice(before).map((m) => m.subject)
    expect(subjects).toContain('[resolved] .github/workflows/cleanup-tokens.yml is enabled again')
  })

  it('fails the run, after checking for missed runs, when the API refuses', async () => {
    failWith = 403
    try {
      await db.sql`insert into jobs.runs (job, status, trigger, started_at, finished_at)
                   values ('cleanup/sessions', 'succeeded', 'schedule', '2026-11-28T12:30:00Z', '2026-11-28T12:30:05Z')`
      const before = smtp.messages.length
      const result = await watchdog()
      expect(result.code, result.output).toBe(1)
      expect(result.output).toContain('GitHub API')
      expect(result.output).toContain('403')
      await smtp.waitFor(before + 1)
      expect(smtp.messages.slice(before).map((m) => m.subject)).toContain(
        '[resolved] cleanup/sessions runs on schedule again',
      )
    } finally {
      failWith = undefined
    }
  })
})

describe('the GitHub REST client', () => {
  it('retries a 5xx answer and succeeds on the next attempt', async () => {
    let calls = 0
    const server = await startHttp((_req, res) => {
      calls++
      if (calls === 1) {
        res.writeHead(502)
        res.end('bad gateway')
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ workflows: [{ id: 1, name: 'a', path: '.github/workflows/a.yml', state: 'active' }] }))
    })
    try {
      const client = createGitHubClient({ token: 't', repository: 'acme/admin', apiUrl: server.url })
      expect(await client.listWorkflows()).toHaveLength(1)
      expect(calls).toBe(2)
      expect(server.requests[1]!.headers['x-github-api-version']).toBe('2022-11-28')
    } finally {
      await server.close()
    }
  })

  it('throws an error carrying the status and GitHub’s message on a 4xx, without retrying', async () => {
    const server = await startHttp((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ message: 'Not Found' }))
    })
    try {
      const client = createGitHubClient({ token: 't', repository: 'acme/admin', apiUrl: server.url })
      const error = await client.enableWorkflow(7).catch((err: unknown) => err as Error & { status?: number })
      expect(error).toBeInstanceOf(Error)
      expect(error!.status).toBe(404)
      expect(error!.message).toBe('GitHub API PUT /repos/acme/admin/actions/workflows/7/enable answered 404: Not Found')
      expect(server.requests).toHaveLength(1)
    } finally {
      await server.close()
    }
  })

  it('follows only the rel="next" link of a Link header', () => {
    expect(nextLink('<https://x/p?page=1>; rel="prev", <https://x/p?page=3>; rel="next"')).toBe('https://x/p?page=3')
    expect(nextLink('<https://x/p?page=1>; rel="first"')).toBeUndefined()
    expect(nextLink(null)).toBeUndefined()
  })
})
