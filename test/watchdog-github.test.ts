import fs from 'node:fs'
import type { ServerResponse } from 'node:http'
import path from 'node:path'
import { createGitHubClient } from '@admin-jobs/sdk/platform'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { answer, checkAgainstOpenApi, type GitHubExchange } from './support/github.ts'
import { createOpsRoot, type OpsRoot } from './support/ops-root.ts'
import { runJobScript as runScript } from './support/run.ts'
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
let visibility = 'private'

const workflows = () => [
  { id: 11, name: 'cleanup/sessions', path: '.github/workflows/cleanup-sessions.yml', state: states[11] },
  { id: 22, name: 'reports/daily', path: '.github/workflows/reports-daily.yml', state: states[22] },
  { id: 33, name: 'cleanup/tokens', path: '.github/workflows/cleanup-tokens.yml', state: states[33] },
  { id: 44, name: 'CI', path: '.github/workflows/ci.yml', state: 'active' },
  { id: 55, name: 'monitoring/watchdog', path: '.github/workflows/monitoring-watchdog.yml', state: 'active' },
  { id: 66, name: 'frequent', path: '.github/workflows/frequent.yml', state: 'active' },
]

/** Every exchange of every fake GitHub in this file, checked against GitHub's OpenAPI description at the end. */
const exchanges: GitHubExchange[] = []

/** Answers like GitHub's REST API for the endpoints the watchdog uses (paginated workflow list included). */
function fakeGitHub(req: CapturedRequest, res: ServerResponse) {
  const send = (status: number, body?: unknown, headers: Record<string, string> = {}) =>
    answer(exchanges, req, res, status, body, headers)
  if (req.headers.authorization !== `Bearer ${token}`) return send(401, { message: 'Bad credentials' })
  if (failWith) return send(failWith, { message: 'Resource not accessible by integration' })
  const url = new URL(req.url, 'http://x')
  if (req.method === 'GET' && url.pathname === '/repos/acme/admin')
    return send(200, { default_branch: 'trunk', visibility, private: visibility !== 'public' })
  if (req.method === 'GET' && url.pathname === '/repos/acme/admin/actions/workflows') {
    const all = workflows()
    const page = Number(url.searchParams.get('page') ?? '1')
    if (page === 1) {
      const next = `<http://${req.headers.host}/repos/acme/admin/actions/workflows?per_page=2&page=2>; rel="next"`
      return send(200, { total_count: all.length, workflows: all.slice(0, 2) }, { link: next })
    }
    return send(200, { total_count: all.length, workflows: all.slice(2) })
  }
  // No run of these workflows ever reached GitHub's run list.
  if (req.method === 'GET' && /^\/repos\/acme\/admin\/actions\/workflows\/\d+\/runs$/.test(url.pathname))
    return send(200, { total_count: 0, workflow_runs: [] })
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
    { job: 'monitoring/watchdog', cron: ['13,43 * * * *'] },
  ])
  // A shared runner: one workflow ticking for several jobs, which the inactivity disable would stop just the same.
  fs.writeFileSync(
    path.join(ops.dir, '.github', 'workflows', 'frequent.yml'),
    [
      'name: frequent',
      'on:',
      '  schedule:',
      '    - cron: "2-57/5 * * * *"',
      'jobs:',
      '  tick:',
      '    runs-on: ubuntu-latest',
      '    steps:',
      '      - run: pnpm tsx scripts/monitoring/watchdog.ts',
      '      - run: pnpm tsx scripts/cleanup/tokens.ts',
      '',
    ].join('\n'),
  )
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

function watchdog(args: string[] = [], at = now) {
  return runScript('scripts/monitoring/watchdog.ts', {
    args,
    env: {
      DATABASE_URL: db.url,
      ADMIN_JOBS_ROOT: ops.dir,
      ADMIN_JOBS_NOW: at,
      SMTP_URL: smtp.url,
      ALERT_EMAIL_TO: 'ops@example.com',
      GITHUB_TOKEN: token,
      GITHUB_REPOSITORY: 'acme/admin',
      GITHUB_API_URL: github.url,
    },
  })
}

const changes = () => github.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.url}`)
const settle = () => new Promise((r) => setTimeout(r, 300))

describe('monitoring/watchdog and the GitHub API', () => {
  it('changes nothing in a dry run', async () => {
    states = { 11: 'active', 22: 'disabled_inactivity', 33: 'disabled_manually' }
    const result = await watchdog(['--dry-run'])
    expect(result.code, result.output).toBe(0)
    expect(changes()).toEqual([])
    expect(result.output).toContain('would re-enable')
    expect(smtp.messages).toHaveLength(0)
  })

  it('re-enables a workflow disabled for inactivity, dispatches catch-up runs of late jobs naming their slots, and leaves a manual disable alone', async () => {
    github.requests.length = 0
    const result = await watchdog()
    expect(result.code, result.output).toBe(0)
    expect(changes()).toEqual([
      'PUT /repos/acme/admin/actions/workflows/22/enable',
      'POST /repos/acme/admin/actions/workflows/11/dispatches',
      'POST /repos/acme/admin/actions/workflows/22/dispatches',
    ])
    const dispatches = github.requests.filter((r) => r.method === 'POST').map((r) => r.json())
    expect(dispatches).toEqual([
      { ref: 'trunk', inputs: { slot: '2026-11-28T12:07:00.000Z' } },
      { ref: 'trunk', inputs: { slot: '2026-11-28T01:00:00.000Z' } },
    ])
    expect(github.requests.some((r) => r.url.includes('/workflows/33/'))).toBe(false)
    expect(github.requests.filter((r) => r.url.includes('page=2'))).toHaveLength(1)
    const claims = await db.sql`select job, slot, claimed_by, status from jobs.dispatches order by job`
    expect(claims.map((c) => `${c.job} ${c.slot.toISOString()} ${c.claimed_by} ${c.status}`)).toEqual([
      'cleanup/sessions 2026-11-28T12:07:00.000Z watchdog sent',
      'reports/daily 2026-11-28T01:00:00.000Z watchdog sent',
    ])

    await smtp.waitFor(2)
    await settle()
    // The late job is caught up, not reported: only the two workflow states are.
    expect(smtp.messages.map((m) => m.subject).sort()).toEqual([
      '[warning] .github/workflows/cleanup-tokens.yml is disabled manually',
      '[warning] .github/workflows/reports-daily.yml was disabled by GitHub for inactivity',
    ])
    const [action] = await db.sql`select workflow, action, detail from jobs.watchdog_actions`
    expect(action).toMatchObject({ workflow: '.github/workflows/reports-daily.yml', action: 'reenabled' })
    expect(result.output).not.toContain(token)
  })

  it('neither dispatches a slot again nor repeats a report while the dispatched runs may still start', async () => {
    github.requests.length = 0
    const before = smtp.messages.length
    const result = await watchdog([], '2026-11-28T12:50:00Z')
    expect(result.code, result.output).toBe(0)
    expect(changes()).toEqual([])
    await settle()
    expect(smtp.messages.slice(before)).toEqual([])
  })

  it('reports a job as stopped when its dispatched run has not started 15 minutes later', async () => {
    const before = smtp.messages.length
    const result = await watchdog([], '2026-11-28T12:56:00Z')
    expect(result.code, result.output).toBe(0)
    await smtp.waitFor(before + 2)
    await settle()
    const stopped = smtp.messages.slice(before)
    expect(stopped.map((m) => m.subject).sort()).toEqual([
      '[warning] cleanup/sessions has stopped running',
      '[warning] reports/daily has stopped running',
    ])
    expect(stopped.find((m) => m.subject?.includes('sessions'))!.text).toContain(
      'slot 2026-11-28 12:07 UTC was dispatched at 2026-11-28 12:40 UTC (by watchdog) and no run has started since',
    )
  })

  it('sends one notice when the manually disabled workflow is enabled again', async () => {
    states[33] = 'active'
    const before = smtp.messages.length
    expect((await watchdog([], '2026-11-28T12:57:00Z')).code).toBe(0)
    await smtp.waitFor(before + 1)
    await settle()
    const subjects = smtp.messages.slice(before).map((m) => m.subject)
    expect(subjects).toContain('[resolved] .github/workflows/cleanup-tokens.yml is enabled again')
  })

  it("keeps every active scheduled workflow of a public repository alive once a week, its own and the shared runner's included", async () => {
    visibility = 'public'
    try {
      github.requests.length = 0
      expect((await watchdog([], '2026-11-28T12:58:00Z')).code).toBe(0)
      const enabled = changes().filter((c) => c.endsWith('/enable'))
      expect(enabled.sort()).toEqual([
        'PUT /repos/acme/admin/actions/workflows/11/enable',
        'PUT /repos/acme/admin/actions/workflows/22/enable',
        'PUT /repos/acme/admin/actions/workflows/33/enable',
        'PUT /repos/acme/admin/actions/workflows/55/enable',
        'PUT /repos/acme/admin/actions/workflows/66/enable',
      ])
      github.requests.length = 0
      expect((await watchdog([], '2026-12-01T12:58:00Z')).code).toBe(0)
      expect(changes().filter((c) => c.endsWith('/enable'))).toEqual([])
      expect((await watchdog([], '2026-12-05T13:00:00Z')).code).toBe(0)
      expect(changes().filter((c) => c.endsWith('/enable'))).toHaveLength(5)
    } finally {
      visibility = 'private'
    }
  })

  it('fails the run, after checking for missed runs, when the API refuses', async () => {
    failWith = 403
    try {
      await db.sql`insert into jobs.runs (job, status, trigger, started_at, finished_at)
                   values ('cleanup/sessions', 'succeeded', 'dispatch', '2026-11-28T12:50:00Z', '2026-11-28T12:50:05Z')`
      const before = smtp.messages.length
      const result = await watchdog([], '2026-11-28T13:00:00Z')
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
  /** A fake GitHub answering `answers` in order (the last one repeats), recording into `exchanges`. */
  async function scripted(...answers: { status: number; body?: unknown; headers?: Record<string, string> }[]) {
    const at: number[] = []
    const server = await startHttp((req, res) => {
      at.push(Date.now())
      const next = answers[Math.min(at.length, answers.length) - 1]!
      answer(exchanges, req, res, next.status, next.body, next.headers)
    })
    const client = createGitHubClient({ token: 't0ken', repository: 'acme/admin', apiUrl: server.url })
    return { server, client, at }
  }
  const oneWorkflow = {
    status: 200,
    body: { total_count: 1, workflows: [{ id: 1, name: 'a', path: '.github/workflows/a.yml', state: 'active' }] },
  }

  it('retries a 5xx answer and succeeds on the next attempt, sending the token and API version', async () => {
    const { server, client } = await scripted({ status: 502, body: { message: 'Server Error' } }, oneWorkflow)
    try {
      expect(await client.listWorkflows()).toHaveLength(1)
      expect(server.requests).toHaveLength(2)
      expect(server.requests[1]!.headers['x-github-api-version']).toBe('2022-11-28')
      expect(server.requests[1]!.headers.authorization).toBe('Bearer t0ken')
    } finally {
      await server.close()
    }
  })

  it('throws an error carrying the status and GitHub’s message on a 4xx, without retrying', async () => {
    const { server, client } = await scripted({ status: 404, body: { message: 'Not Found' } })
    try {
      const error = await client.enableWorkflow(7).catch((err: unknown) => err as Error & { status?: number })
      expect(error).toBeInstanceOf(Error)
      expect(error!.status).toBe(404)
      expect(error!.message).toBe('GitHub API PUT /repos/acme/admin/actions/workflows/7/enable answered 404: Not Found')
      expect(server.requests).toHaveLength(1)
    } finally {
      await server.close()
    }
  })

  it('waits for the reset of an exhausted rate limit (403, x-ratelimit-remaining 0), then succeeds', async () => {
    const reset = Math.ceil(Date.now() / 1000) + 1
    const { server, client, at } = await scripted(
      {
        status: 403,
        body: { message: 'API rate limit exceeded for installation ID 1.' },
        headers: { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) },
      },
      { status: 200, body: { default_branch: 'trunk' } },
    )
    try {
      expect(await client.defaultBranch()).toBe('trunk')
      expect(at).toHaveLength(2)
      expect(at[1]!).toBeGreaterThanOrEqual(reset * 1000)
    } finally {
      await server.close()
    }
  })

  it('waits as long as retry-after says on a secondary rate limit (429), then succeeds', async () => {
    const { server, client, at } = await scripted(
      {
        status: 429,
        body: { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.' },
        headers: { 'retry-after': '1' },
      },
      { status: 204 },
    )
    try {
      await client.dispatchWorkflow(5, 'main')
      expect(at).toHaveLength(2)
      expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(1000)
      expect(server.requests[1]!.json()).toEqual({ ref: 'main' })
    } finally {
      await server.close()
    }
  })

  it('fails at once, naming the limit, when GitHub asks to wait longer than a run should', async () => {
    const { server, client } = await scripted({
      status: 403,
      body: { message: 'You have exceeded a secondary rate limit.' },
      headers: { 'retry-after': '3600' },
    })
    try {
      const started = Date.now()
      const error = (await client.listWorkflows().then(
        () => undefined,
        (err: unknown) => err,
      )) as (Error & { status?: number }) | undefined
      expect(Date.now() - started).toBeLessThan(1000)
      expect(error!.status).toBe(403)
      expect(error!.message).toContain('answered 403: You have exceeded a secondary rate limit.')
      expect(server.requests).toHaveLength(1)
    } finally {
      await server.close()
    }
  })

  it('lists workflows across every page and re-runs the failed jobs of a run', async () => {
    const server = await startHttp((req, res) => {
      const url = new URL(req.url, 'http://x')
      if (req.method === 'POST') return answer(exchanges, req, res, 201)
      const page = Number(url.searchParams.get('page') ?? '1')
      const next = `<http://${req.headers.host}/repos/acme/admin/actions/workflows?per_page=100&page=${page + 1}>; rel="next"`
      const workflow = { id: page, name: `w${page}`, path: `.github/workflows/w${page}.yml`, state: 'active' }
      answer(exchanges, req, res, 200, { total_count: 3, workflows: [workflow] }, page < 3 ? { link: next } : {})
    })
    try {
      const client = createGitHubClient({ token: 't', repository: 'acme/admin', apiUrl: server.url })
      expect((await client.listWorkflows()).map((w) => w.id)).toEqual([1, 2, 3])
      await client.rerunFailedJobs('9001')
      expect(server.requests.at(-1)).toMatchObject({
        method: 'POST',
        url: '/repos/acme/admin/actions/runs/9001/rerun-failed-jobs',
      })
    } finally {
      await server.close()
    }
  })
})

describe('the fake GitHub of these tests', () => {
  it('speaks GitHub’s REST API as its OpenAPI description has it', () => {
    const { problems, operations } = checkAgainstOpenApi(exchanges)
    expect(problems).toEqual([])
    expect(operations).toEqual([
      'GET /repos/{owner}/{repo}',
      'GET /repos/{owner}/{repo}/actions/workflows',
      'GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs',
      'POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs',
      'POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches',
      'PUT /repos/{owner}/{repo}/actions/workflows/{workflow_id}/enable',
    ])
  })

  it('would be caught answering an unknown path, an undocumented status, an invented field or a wrong type', () => {
    const { problems } = checkAgainstOpenApi([
      { method: 'GET', path: '/repos/a/b/actions/flows', requestBody: undefined, status: 200, responseBody: {} },
      {
        method: 'PUT',
        path: '/repos/a/b/actions/workflows/1/enable',
        requestBody: undefined,
        status: 200,
        responseBody: undefined,
      },
      {
        method: 'GET',
        path: '/repos/a/b/actions/workflows',
        requestBody: undefined,
        status: 200,
        responseBody: { total_count: '1', workflows: [{ id: 1, state: 'paused', colour: 'red' }] },
      },
      {
        method: 'POST',
        path: '/repos/a/b/actions/workflows/1/dispatches',
        requestBody: { ref: 7 },
        status: 204,
        responseBody: undefined,
      },
    ])
    expect(problems).toEqual([
      "GET /repos/a/b/actions/flows: no such operation in GitHub's API",
      'PUT /repos/a/b/actions/workflows/1/enable: GitHub does not answer 200 (documented: 204)',
      'GET /repos/a/b/actions/workflows 200.total_count: string where the schema says integer',
      'GET /repos/a/b/actions/workflows 200.workflows[0].state: "paused" is not one of active, deleted, disabled_fork, disabled_inactivity, disabled_manually',
      'GET /repos/a/b/actions/workflows 200.workflows[0].colour: not in the schema',
      'POST /repos/a/b/actions/workflows/1/dispatches request.ref: integer where the schema says string',
    ])
  })
})
