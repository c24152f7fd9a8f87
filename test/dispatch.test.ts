import type { ServerResponse } from 'node:http'
import { createGitHubClient, dispatchTick, loadSchedules, servedSlot } from '@admin-jobs/sdk/platform'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { answer, checkAgainstOpenApi, type GitHubExchange } from './support/github.ts'
import { createOpsRoot, type OpsRoot } from './support/ops-root.ts'
import { runCli } from './support/run.ts'
import { type CapturedRequest, type HttpCapture, startHttp } from './support/servers.ts'

let db: TestDatabase
let github: HttpCapture
let ops: OpsRoot
const exchanges: GitHubExchange[] = []
const token = 'ghp_dispatchtesttoken'
let refuse: number | undefined
let disabled = new Set<number>()

const workflows = () => [
  { id: 1, name: 'cleanup/sessions', path: '.github/workflows/cleanup-sessions.yml' },
  { id: 2, name: 'reports/daily', path: '.github/workflows/reports-daily.yml' },
  { id: 3, name: 'monitoring/health-check', path: '.github/workflows/monitoring-health-check.yml' },
]

function fakeGitHub(req: CapturedRequest, res: ServerResponse) {
  const send = (status: number, body?: unknown) => answer(exchanges, req, res, status, body)
  if (req.headers.authorization !== `Bearer ${token}`) return send(401, { message: 'Bad credentials' })
  const url = new URL(req.url, 'http://x')
  if (req.method === 'GET' && url.pathname === '/repos/acme/admin') return send(200, { default_branch: 'main' })
  if (req.method === 'GET' && url.pathname === '/repos/acme/admin/actions/workflows') {
    const list = workflows().map((w) => ({ ...w, state: disabled.has(w.id) ? 'disabled_inactivity' : 'active' }))
    return send(200, { total_count: list.length, workflows: list })
  }
  const enable = /^\/repos\/acme\/admin\/actions\/workflows\/(\d+)\/enable$/.exec(url.pathname)
  if (req.method === 'PUT' && enable) {
    disabled.delete(Number(enable[1]))
    return send(204)
  }
  if (req.method === 'POST' && /\/actions\/workflows\/\d+\/dispatches$/.test(url.pathname)) {
    if (refuse) return send(refuse, { message: 'Unexpected inputs provided: ["slot"]' })
    return send(204)
  }
  return send(404, { message: 'Not Found' })
}

beforeAll(async () => {
  db = await createTestDatabase('dispatch')
  github = await startHttp(fakeGitHub)
  ops = createOpsRoot('dispatch')
  ops.writeWorkflows([
    { job: 'cleanup/sessions', cron: ['7 */6 * * *'] },
    { job: 'reports/daily', cron: ['0 1 * * *'] },
    { job: 'monitoring/health-check', cron: ['2-57/5 * * * *'] },
  ])
})
afterAll(() => github.close())

const client = () => createGitHubClient({ token, repository: 'acme/admin', apiUrl: github.url, paceWrites: false })
const log = { info: () => {}, warn: () => {} }
const tick = (now: string, by: string) =>
  dispatchTick({ sql: db.sql, client: client(), schedules: loadSchedules(ops.dir), by, now: new Date(now), log })
const posts = () => github.requests.filter((r) => r.method === 'POST').map((r) => [r.url, r.json()])

describe('dispatching due slots', () => {
  it('dispatches each job’s current slot once, with the slot as input, and leaves slots older than 6 hours alone', async () => {
    const results = await tick('2026-11-28T12:08:00Z', 'dispatcher@a')
    expect(results.map((r) => `${r.job} ${r.slot.toISOString()} ${r.outcome}`).sort()).toEqual([
      'cleanup/sessions 2026-11-28T12:07:00.000Z dispatched',
      'monitoring/health-check 2026-11-28T12:07:00.000Z dispatched',
    ])
    expect(posts()).toEqual([
      [
        '/repos/acme/admin/actions/workflows/1/dispatches',
        { ref: 'main', inputs: { slot: '2026-11-28T12:07:00.000Z' } },
      ],
      [
        '/repos/acme/admin/actions/workflows/3/dispatches',
        { ref: 'main', inputs: { slot: '2026-11-28T12:07:00.000Z' } },
      ],
    ])
  })

  it('never sends a slot twice: not from a second dispatcher, nor from two racing at once', async () => {
    github.requests.length = 0
    expect((await tick('2026-11-28T12:09:00Z', 'dispatcher@b')).map((r) => r.outcome)).toEqual(['claimed', 'claimed'])
    const [a, b] = await Promise.all([
      tick('2026-11-28T12:12:30Z', 'dispatcher@a'),
      tick('2026-11-28T12:12:30Z', 'dispatcher@b'),
    ])
    const sent = [...a, ...b].filter((r) => r.outcome === 'dispatched')
    expect(sent.map((r) => r.job)).toEqual(['monitoring/health-check'])
    expect(posts()).toHaveLength(1)
    const [claim] = await db.sql`select count(*)::int as n from jobs.dispatches where job = 'monitoring/health-check'`
    expect(claim!.n).toBe(2)
  })

  it('leaves a slot alone that a run already serves, so GitHub’s late cron and the dispatcher do not both run it', async () => {
    github.requests.length = 0
    // GitHub's cron served 12:17 on time; the dispatcher comes a minute later.
    await db.sql`insert into jobs.runs (job, status, trigger, started_at, finished_at, slot)
                 values ('monitoring/health-check', 'succeeded', 'schedule', '2026-11-28T12:17:20Z', '2026-11-28T12:17:40Z', '2026-11-28T12:17:00Z')`
    const results = await tick('2026-11-28T12:18:00Z', 'dispatcher@a')
    expect(results.find((r) => r.job === 'monitoring/health-check')?.outcome).toBe('taken')
    expect(posts()).toEqual([])
    expect(await servedSlot(db.sql, 'monitoring/health-check', new Date('2026-11-28T12:17:00Z'))).toBeDefined()
  })

  it('releases a slot GitHub refused, so a later tick may send it once the workflow takes the input', async () => {
    refuse = 422
    try {
      const refused = (await tick('2026-11-28T12:22:10Z', 'dispatcher@a')).find(
        (r) => r.job === 'monitoring/health-check',
      )
      expect(refused).toMatchObject({ outcome: 'refused', detail: expect.stringContaining('Unexpected inputs') })
    } finally {
      refuse = undefined
    }
    const again = (await tick('2026-11-28T12:23:00Z', 'dispatcher@a')).find((r) => r.job === 'monitoring/health-check')
    expect(again?.outcome).toBe('dispatched')
  })

  it('re-enables a job workflow GitHub disabled for inactivity before dispatching to it', async () => {
    disabled = new Set([3])
    github.requests.length = 0
    await tick('2026-11-28T12:27:05Z', 'dispatcher@a')
    expect(github.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.url}`)).toEqual([
      'PUT /repos/acme/admin/actions/workflows/3/enable',
      'POST /repos/acme/admin/actions/workflows/3/dispatches',
    ])
  })
})

describe('pnpm jobs dispatch', () => {
  const env = (extra: Record<string, string> = {}) => ({
    DATABASE_URL: db.url,
    ADMIN_JOBS_ROOT: ops.dir,
    GITHUB_TOKEN: token,
    GITHUB_REPOSITORY: 'acme/admin',
    GITHUB_API_URL: github.url,
    ...extra,
  })

  it('runs one tick with --once and exits 0, saying what it dispatched', async () => {
    const result = await runCli(['dispatch', '--once'], { env: env({ ADMIN_JOBS_NOW: '2026-11-28T13:02:10Z' }) })
    expect(result.code, result.output).toBe(0)
    expect(result.stdout).toContain('monitoring/health-check slot 2026-11-28T13:02:00.000Z: dispatched')
    expect(result.output).not.toContain(token)
  })

  it('refuses to start without a token (exit 2)', async () => {
    const result = await runCli(['dispatch', '--once'], { env: env({ GITHUB_TOKEN: '' }) })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('GITHUB_TOKEN')
  })
})

describe('the fake GitHub of these tests', () => {
  it('speaks GitHub’s REST API as its OpenAPI description has it', () => {
    const { problems, operations } = checkAgainstOpenApi(exchanges)
    expect(problems).toEqual([])
    expect(operations).toContain('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches')
  })
})
