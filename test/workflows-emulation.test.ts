import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { jobEnv, root } from './support/run.ts'
import { type HttpCapture, type SmtpCapture, startHttp, startSmtp } from './support/servers.ts'
import {
  actionsFiles,
  condition,
  evaluate,
  type JobRun,
  loadWorkflows,
  runJobSteps,
  type WorkflowFile,
} from './support/workflows.ts'

// Every job workflow's run: steps, executed as a GitHub-hosted runner would (bash -eo pipefail, Actions variables,
// the step's env with secrets replaced by test values), against a test database. Setup and `uses:` steps are
// skipped: the local checkout already has node, pnpm and node_modules.

const jobWorkflows = loadWorkflows().filter((w) => w.job)
const repository = 'acme/admin-jobs'
const serverUrl = 'https://github.com'

let db: TestDatabase
let http: HttpCapture
let smtp: SmtpCapture
let nextRunId = 7_000_000_000

beforeAll(async () => {
  db = await createTestDatabase('workflows_emulation')
  // Answers GitHub API reads like an empty repository's, and anything else (Slack, heartbeats, health URLs) with 200.
  http = await startHttp((req, res) => {
    if (!req.url.startsWith('/repos/')) return void res.end('ok')
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ total_count: 0, workflows: [], workflow_runs: [], jobs: [] }))
  })
  smtp = await startSmtp()
})
afterAll(async () => {
  await http?.close()
  await smtp?.close()
})

interface Emulation {
  code: number | null
  output: string
  summary: string
  outputs: string
  runId: string
  attempt: number
}

/** Runs a workflow's job steps with the Actions environment of one event. */
async function emulate(
  w: WorkflowFile,
  event: {
    name: 'schedule' | 'workflow_dispatch'
    inputs?: Record<string, unknown>
    attempt?: number
    /** Repository variables beyond the defaults below. */
    vars?: Record<string, string>
    /** Pins every step's clock (ADMIN_JOBS_NOW): the jobs' and `pnpm jobs due`'s. */
    now?: string
  },
): Promise<Emulation & { jobSkipped: boolean; outcomes: JobRun['outcomes'] }> {
  const runId = String(nextRunId++)
  const attempt = event.attempt ?? 1
  const files = actionsFiles()
  const context = {
    secrets: {
      DATABASE_URL: db.url,
      SLACK_WEBHOOK_URL: `${http.url}/slack`,
      SMTP_URL: smtp.url,
      HEARTBEAT_URL: `${http.url}/heartbeat`,
      GITHUB_TOKEN: 'ghs_emulated',
    },
    vars: {
      ALERT_EMAIL_FROM: 'jobs@example.test',
      ALERT_EMAIL_TO: 'ops@example.test',
      HEALTHCHECK_URLS: `${http.url}/health`,
      ...event.vars,
    },
    inputs: event.inputs ?? {},
    github: {
      token: 'ghs_emulated',
      event_name: event.name,
      repository,
      run_id: runId,
      run_attempt: String(attempt),
      server_url: serverUrl,
      api_url: http.url,
      workflow: w.doc.name,
      ref: 'refs/heads/main',
      ref_name: 'main',
    },
    runner: { temp: files.dir, os: 'Linux' },
    env: {},
  }
  const actions = {
    ...files.env,
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_RUN_ID: runId,
    GITHUB_RUN_ATTEMPT: String(attempt),
    GITHUB_EVENT_NAME: event.name,
    GITHUB_REPOSITORY: repository,
    GITHUB_SERVER_URL: serverUrl,
    GITHUB_API_URL: http.url,
    GITHUB_WORKFLOW: String(w.doc.name),
    GITHUB_REF: 'refs/heads/main',
    GITHUB_WORKSPACE: root,
    RUNNER_OS: 'Linux',
    ...(event.now ? { ADMIN_JOBS_NOW: event.now } : {}),
  }
  const job = Object.values<any>(w.doc.jobs)[0] ?? {}
  // A job whose `if:` is false starts no runner: no step runs.
  if (job.if !== undefined && !condition(job.if, context, 'success'))
    return { code: 0, output: '', summary: '', outputs: '', runId, attempt, jobSkipped: true, outcomes: [] }
  const run = await runJobSteps(job, {
    context,
    workflowEnv: w.doc.env,
    stepEnv: () => jobEnv({ ...actions }),
  })
  return {
    code: run.status === 'success' ? 0 : 1,
    output: run.output,
    summary: fs.readFileSync(files.summary, 'utf8'),
    outputs: run.outputs,
    runId,
    attempt,
    jobSkipped: false,
    outcomes: run.outcomes,
  }
}

async function historyRow(runId: string, attempt: number) {
  const [row] = await db.sql<{ job: string; status: string; trigger: string; attempt: number; dry_run: boolean }[]>`
    select job, status, trigger, attempt, dry_run from jobs.runs
    where run_url = ${`${serverUrl}/${repository}/actions/runs/${runId}/attempts/${attempt}`}`
  return row
}

const scriptExists = (w: WorkflowFile) => fs.existsSync(path.join(root, 'scripts', `${w.job}.ts`))

describe('cleanup-sessions.yml, emulated in full', () => {
  const w = jobWorkflows.find((x) => x.job === 'cleanup/sessions')!

  test('a scheduled run deletes expired sessions, writes the summary and records trigger, attempt and run URL', async () => {
    await db.sql`
      insert into sessions (user_id, expires_at, revoked_at) values
        (1, now() - interval '1 day', null), (2, now() + interval '1 day', null),
        (3, now() + interval '1 day', now() - interval '2 days')`
    const run = await emulate(w, { name: 'schedule' })
    expect(run.code, run.output).toBe(0)
    const [{ count }] = await db.sql<{ count: number }[]>`select count(*)::int as count from sessions`
    expect(count).toBe(1)
    expect(run.summary).toContain('cleanup/sessions: succeeded')
    expect(run.outputs).toMatch(/status<<|status=/)
    expect(await historyRow(run.runId, 1)).toEqual({
      job: 'cleanup/sessions',
      status: 'succeeded',
      trigger: 'schedule',
      attempt: 1,
      dry_run: false,
    })
  })

  test('a re-run attempt is recorded as a rerun with its attempt number', async () => {
    const run = await emulate(w, { name: 'schedule', attempt: 2 })
    expect(run.code, run.output).toBe(0)
    expect(await historyRow(run.runId, 2)).toMatchObject({ trigger: 'rerun', attempt: 2, status: 'succeeded' })
  })
})

// Dry runs of the other job workflows run concurrently, at most `parallelRuns` processes at a time.
const parallelRuns = 3
let running = 0
const waiting: (() => void)[] = []
async function limited<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= parallelRuns) await new Promise<void>((resolve) => waiting.push(resolve))
  running++
  try {
    return await fn()
  } finally {
    running--
    waiting.shift()?.()
  }
}

// One suite, so that its concurrent tests really overlap (vitest runs suites one after another).
describe('every other job workflow, emulated as a manual dry run', () => {
  for (const w of jobWorkflows.filter((x) => x.job !== 'cleanup/sessions')) {
    const exists = scriptExists(w)
    const define = exists ? test.concurrent : test.skip
    define(
      exists
        ? `${w.file} exits 0, writes the summary and records a workflow_dispatch dry run with its run URL`
        : `${w.file} is skipped: scripts/${w.job}.ts does not exist yet`,
      async () => {
        const run = await limited(() =>
          emulate(w, { name: 'workflow_dispatch', inputs: { dry_run: true, force: false } }),
        )
        expect(run.code, run.output).toBe(0)
        expect(run.summary).toContain(`${w.job}:`)
        expect(run.summary).toContain('(dry run)')
        expect(await historyRow(run.runId, 1)).toMatchObject({
          job: w.job,
          trigger: 'workflow_dispatch',
          attempt: 1,
          dry_run: true,
        })
      },
      240_000, // includes the wait for a free slot
    )
  }
})

async function historyRows(runId: string) {
  return db.sql<{ job: string; status: string; trigger: string; dry_run: boolean }[]>`
    select job, status, trigger, dry_run from jobs.runs
    where run_url = ${`${serverUrl}/${repository}/actions/runs/${runId}/attempts/1`} order by id`
}

describe('frequent.yml, the shared runner, emulated tick by tick', () => {
  const shared = loadWorkflows().find((w) => w.file === 'frequent.yml')!
  const monitorSteps = ['health-check', 'performance', 'security-alerts', 'watchdog']
  const outcome = (run: { outcomes: JobRun['outcomes'] }, step: string) =>
    run.outcomes.find((o) => o.step === step)?.outcome

  test('at 10:17 runs the monitors due then, each in its own step; a failing one fails the job but hides none', async () => {
    // Due since the 10:12 tick: health check (10:17), performance (10:14), watchdog (10:13); security alerts (10:18)
    // are not. Performance is given a malformed setting, so its step fails (exit 2) and records nothing; the
    // watchdog after it still runs and writes the status page.
    const run = await emulate(shared, {
      name: 'schedule',
      now: '2026-03-02T10:17:40Z',
      vars: { PERF_QUERY_MAX: 'soon' },
    })
    expect(run.jobSkipped).toBe(false)
    expect(monitorSteps.map((s) => [s, outcome(run, s)])).toEqual([
      ['health-check', 'success'],
      ['performance', 'failure'],
      ['security-alerts', 'skipped'],
      ['watchdog', 'success'],
    ])
    expect(outcome(run, 'Write the status page')).toBe('success')
    expect(outcome(run, 'Outcome of each monitor')).toBe('failure')
    expect(run.code).toBe(1)
    expect(run.output).toContain('PERF_QUERY_MAX')
    expect(run.output).toContain('1 monitor(s) failed in this tick')
    expect(run.summary).toContain('monitoring/health-check: succeeded')
    expect(run.summary).toContain('monitoring/watchdog: succeeded')
    expect(run.summary).toMatch(/\| monitoring\/performance \| failure \|/)
    expect(run.summary).toMatch(/\| notifications\/security-alerts \| not due \|/)
    expect((await historyRows(run.runId)).map((r) => [r.job, r.status, r.trigger])).toEqual([
      ['monitoring/health-check', 'succeeded', 'schedule'],
      ['monitoring/watchdog', 'succeeded', 'schedule'],
    ])
  }, 180_000)

  test('starts no runner on its schedule when ADMIN_JOBS_SHARED_RUNNER is false, and the monitors’ own workflows do', async () => {
    const off = await emulate(shared, { name: 'schedule', vars: { ADMIN_JOBS_SHARED_RUNNER: 'false' } })
    expect(off.jobSkipped).toBe(true)
    const own = jobWorkflows.find((w) => w.job === 'monitoring/health-check')!
    expect((await emulate(own, { name: 'schedule' })).jobSkipped).toBe(true)
    const alone = await emulate(own, { name: 'schedule', vars: { ADMIN_JOBS_SHARED_RUNNER: 'false' } })
    expect(alone.jobSkipped).toBe(false)
    expect(alone.code, alone.output).toBe(0)
  }, 120_000)
})

describe('the emulator’s expression evaluator', () => {
  const x = (expression: string) => `\${{ ${expression} }}`
  const context = { inputs: { dry_run: true }, secrets: { DATABASE_URL: 'postgres://x' }, vars: {} }

  test('evaluates context paths, string literals and || the way GitHub does', () => {
    expect(evaluate(x("inputs.dry_run || 'false'"), context)).toBe('true')
    expect(evaluate(x("inputs.force || 'false'"), context)).toBe('false')
    expect(evaluate(x('secrets.DATABASE_URL'), context)).toBe('postgres://x')
    expect(evaluate(x('vars.MISSING'), context)).toBe('')
    expect(evaluate(`prefix-${x('secrets.DATABASE_URL')}`, context)).toBe('prefix-postgres://x')
  })

  test('evaluates comparisons and functions with GitHub’s own engine, and refuses what GitHub would', () => {
    expect(evaluate(x("format('{0}-{1}', inputs.dry_run, 'x')"), context)).toBe('true-x')
    expect(evaluate(x("inputs.dry_run == true && 'yes' || 'no'"), context)).toBe('yes')
    expect(evaluate(x('fromJSON(\'["self-hosted","linux"]\')[1]'), context)).toBe('linux')
    expect(() => evaluate(x('inputs.dry_run =='), context)).toThrow()
    expect(() => evaluate(x('nosuchfunction(1)'), context)).toThrow()
  })

  test('reads if: conditions as GitHub does: success() unless a status function is named', () => {
    const steps = { steps: { due: { outputs: { a: 'true', b: 'false' } }, a: { outcome: 'failure' } } }
    expect(condition(undefined, steps, 'success')).toBe(true)
    expect(condition(undefined, steps, 'failure')).toBe(false)
    expect(condition("steps.due.outputs.a == 'true'", steps, 'failure')).toBe(false)
    expect(condition(`\${{ !cancelled() && steps.due.outputs.a == 'true' }}`, steps, 'failure')).toBe(true)
    expect(condition(`\${{ !cancelled() && steps.due.outputs.b == 'true' }}`, steps, 'success')).toBe(false)
    expect(condition(`\${{ !cancelled() }}`, steps, 'cancelled')).toBe(false)
    expect(condition('always()', steps, 'cancelled')).toBe(true)
    expect(condition("steps.a.outcome == 'failure'", steps, 'success')).toBe(true)
  })
})
