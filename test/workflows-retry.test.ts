import fs from 'node:fs'
import {
  type CompletedRun,
  decideRetry,
  type RetryPolicy,
  retryableWorkflows,
  retryDelayLimitSeconds,
  runRetryStep,
} from '@admin-jobs/sdk/platform'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { answer, checkAgainstOpenApi, type GitHubExchange } from './support/github.ts'
import { jobEnv, root } from './support/run.ts'
import { type HttpCapture, startHttp } from './support/servers.ts'
import { actionsFiles, allSteps, condition, evaluate, loadWorkflows, runStep } from './support/workflows.ts'

const policy: RetryPolicy = { retryable: ['cleanup/sessions', 'reports/daily'], defaultBranch: 'main' }
const failed: CompletedRun = {
  workflow: 'cleanup/sessions',
  conclusion: 'failure',
  attempt: 1,
  event: 'schedule',
  branch: 'main',
}

describe('decideRetry', () => {
  test('re-runs a failed first attempt of a retryable scheduled job as attempt 2 after a minute', () => {
    expect(decideRetry(failed, policy)).toEqual({
      retry: true,
      reason: 'attempt 1 of 3 ended with failure: re-running its failed jobs as attempt 2',
      nextAttempt: 2,
      delaySeconds: 60,
    })
  })

  test('re-runs a timed-out second attempt as the third and last, waiting longer', () => {
    const decision = decideRetry({ ...failed, conclusion: 'timed_out', attempt: 2 }, policy)
    expect(decision).toMatchObject({ retry: true, nextAttempt: 3, delaySeconds: 120 })
  })

  test('never waits longer than the limit, however long the base delay and late the attempt', () => {
    expect(decideRetry({ ...failed, attempt: 2 }, { ...policy, delaySeconds: 300 })).toMatchObject({
      retry: true,
      delaySeconds: retryDelayLimitSeconds,
    })
    expect(decideRetry({ ...failed, attempt: 2 }, { ...policy, delaySeconds: 100 })).toMatchObject({
      delaySeconds: 200,
    })
    expect(
      decideRetry({ ...failed, attempt: 2 }, { ...policy, delaySeconds: 100, maxDelaySeconds: 150 }),
    ).toMatchObject({
      delaySeconds: 150,
    })
  })

  test('stops after 3 attempts in total', () => {
    expect(decideRetry({ ...failed, attempt: 3 }, policy)).toEqual({
      retry: false,
      reason: 'attempt 3 of 3 failed: no attempts left',
    })
    expect(decideRetry({ ...failed, attempt: 4 }, policy).retry).toBe(false)
    expect(decideRetry({ ...failed, attempt: 2 }, { ...policy, maxAttempts: 2 }).retry).toBe(false)
  })

  test('leaves jobs that are not marked retryable alone', () => {
    const decision = decideRetry({ ...failed, workflow: 'monitoring/health-check' }, policy)
    expect(decision).toEqual({ retry: false, reason: 'monitoring/health-check is not marked retryable' })
  })

  test('re-runs only failures and timeouts, never successes, cancellations or skips', () => {
    for (const conclusion of ['success', 'cancelled', 'skipped', 'neutral', 'action_required', '']) {
      expect(decideRetry({ ...failed, conclusion }, policy).retry, conclusion).toBe(false)
    }
  })

  test('re-runs scheduled and manually dispatched runs but nothing started by other events', () => {
    expect(decideRetry({ ...failed, event: 'workflow_dispatch' }, policy).retry).toBe(true)
    expect(decideRetry({ ...failed, event: 'push' }, policy).retry).toBe(false)
    expect(decideRetry({ ...failed, event: 'pull_request' }, policy).retry).toBe(false)
  })

  test('re-runs only runs on the default branch', () => {
    expect(decideRetry({ ...failed, branch: 'feature/x' }, policy)).toEqual({
      retry: false,
      reason: 'the run is on feature/x, not main',
    })
    expect(decideRetry({ ...failed, branch: undefined }, policy).retry).toBe(false)
  })

  test('refuses a nonsensical attempt number', () => {
    expect(decideRetry({ ...failed, attempt: 0 }, policy).retry).toBe(false)
    expect(decideRetry({ ...failed, attempt: Number.NaN }, policy).retry).toBe(false)
  })
})

describe('retryableWorkflows', () => {
  test('reads the workflow names retry.yml subscribes to', () => {
    const yaml = 'on:\n  workflow_run:\n    workflows: [a/b, "c/d"]\n    types: [completed]\n'
    expect(retryableWorkflows(yaml)).toEqual(['a/b', 'c/d'])
  })

  test('fails loudly when the list is missing', () => {
    expect(() => retryableWorkflows('on:\n  push: {}\n')).toThrow(/workflow_run\.workflows/)
  })

  test('reads the real retry.yml', () => {
    const names = retryableWorkflows(fs.readFileSync(`${root}/.github/workflows/retry.yml`, 'utf8'))
    expect(names).toContain('cleanup/sessions')
    expect(names).not.toContain('monitoring/health-check')
  })
})

describe('the retry step', () => {
  const exchanges: GitHubExchange[] = []
  let api: HttpCapture
  let status = 201
  beforeAll(async () => {
    api = await startHttp((req, res) =>
      answer(
        exchanges,
        req,
        res,
        status,
        status === 201 ? undefined : { message: 'Resource not accessible by integration' },
      ),
    )
  })
  afterAll(() => api.close())

  const env = (extra: Record<string, string> = {}) => {
    const files = actionsFiles()
    return {
      files,
      env: {
        ...files.env,
        GITHUB_REPOSITORY: 'acme/admin-jobs',
        GITHUB_API_URL: api.url,
        GITHUB_TOKEN: 'ghs_test_token',
        RETRY_WORKFLOW: 'cleanup/sessions',
        RETRY_RUN_ID: '9001',
        RETRY_RUN_ATTEMPT: '1',
        RETRY_CONCLUSION: 'failure',
        RETRY_EVENT: 'schedule',
        RETRY_BRANCH: 'main',
        RETRY_DEFAULT_BRANCH: 'main',
        ...extra,
      },
    }
  }

  test('waits, then POSTs rerun-failed-jobs for the run with the token, and reports it', async () => {
    status = 201
    api.requests.length = 0
    const waits: number[] = []
    const lines: string[] = []
    const { env: e, files } = env()
    const code = await runRetryStep(e, { sleep: async (ms) => void waits.push(ms), out: (l) => lines.push(l) })
    expect(code).toBe(0)
    expect(waits).toEqual([60_000])
    expect(api.requests).toHaveLength(1)
    expect(api.requests[0]).toMatchObject({
      method: 'POST',
      url: '/repos/acme/admin-jobs/actions/runs/9001/rerun-failed-jobs',
    })
    expect(api.requests[0]!.headers.authorization).toBe('Bearer ghs_test_token')
    expect(api.requests[0]!.headers['x-github-api-version']).toBe('2022-11-28')
    expect(fs.readFileSync(files.output, 'utf8')).toBe('decision=retry\n')
    expect(fs.readFileSync(files.summary, 'utf8')).toMatch(/re-running failed jobs[\s\S]*attempt 2/)
    expect(lines.join('\n')).not.toContain('ghs_test_token')
  })

  test('sends nothing for a run that already used its 3 attempts', async () => {
    api.requests.length = 0
    const { env: e, files } = env({ RETRY_RUN_ATTEMPT: '3' })
    expect(await runRetryStep(e, { sleep: async () => {}, out: () => {} })).toBe(0)
    expect(api.requests).toHaveLength(0)
    expect(fs.readFileSync(files.output, 'utf8')).toBe('decision=skip\n')
    expect(fs.readFileSync(files.summary, 'utf8')).toContain('no attempts left')
  })

  test('fails the step when GitHub refuses, without retrying a 403', async () => {
    status = 403
    api.requests.length = 0
    const lines: string[] = []
    const { env: e } = env()
    expect(await runRetryStep(e, { sleep: async () => {}, out: (l) => lines.push(l) })).toBe(1)
    expect(api.requests).toHaveLength(1)
    expect(lines.join('\n')).toMatch(/::error::retry: could not re-run .*403/)
  })

  test('retries the API call itself when GitHub answers 5xx', async () => {
    api.requests.length = 0
    let calls = 0
    api.setHandler((req, res) => answer(exchanges, req, res, ++calls === 1 ? 502 : 201))
    const { env: e } = env()
    expect(await runRetryStep(e, { sleep: async () => {}, out: () => {} })).toBe(0)
    expect(api.requests).toHaveLength(2)
    api.setHandler((req, res) => answer(exchanges, req, res, status))
  })

  test('asks GitHub only what its REST API offers, as its OpenAPI description has it', () => {
    const { problems, operations } = checkAgainstOpenApi(exchanges)
    expect(problems).toEqual([])
    expect(operations).toEqual(['POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs'])
  })

  test('refuses a base delay above the limit instead of outwaiting the workflow’s timeout', async () => {
    const lines: string[] = []
    const { env: e } = env({ RETRY_DELAY_SECONDS: String(retryDelayLimitSeconds + 1) })
    expect(await runRetryStep(e, { sleep: async () => {}, out: (l) => lines.push(l) })).toBe(2)
    expect(lines.join('\n')).toContain('RETRY_DELAY_SECONDS')
  })

  test('exits 2 naming the variable when the event fields are missing or malformed', async () => {
    const lines: string[] = []
    const { env: e } = env({ RETRY_RUN_ID: '' })
    expect(await runRetryStep(e, { out: (l) => lines.push(l) })).toBe(2)
    expect(lines.join('\n')).toContain('RETRY_RUN_ID is not set')
    const { env: e2 } = env({ RETRY_RUN_ATTEMPT: 'two' })
    expect(await runRetryStep(e2, { out: (l) => lines.push(l) })).toBe(2)
    expect(lines.join('\n')).toContain('RETRY_RUN_ATTEMPT')
  })
})

describe('retry.yml, emulated', () => {
  const retry = loadWorkflows().find((w) => w.file === 'retry.yml')!
  const step = allSteps(retry.doc).find((s) => s.run)!
  let api: HttpCapture
  beforeAll(async () => {
    api = await startHttp((_req, res) => {
      res.statusCode = 201
      res.end()
    })
  })
  afterAll(() => api.close())

  const context = (run: Record<string, unknown>, defaultBranch = 'main') => ({
    github: {
      token: 'ghs_default_token',
      event: {
        repository: { default_branch: defaultBranch },
        workflow_run: {
          id: 4242,
          name: 'reports/daily',
          run_attempt: 1,
          conclusion: 'failure',
          event: 'schedule',
          head_branch: 'main',
          ...run,
        },
      },
    },
    secrets: {},
    vars: { ADMIN_JOBS_RETRY_DELAY_SECONDS: '0' },
  })

  const emulate = async (run: Record<string, unknown>, defaultBranch = 'main') => {
    const files = actionsFiles()
    const mapped = Object.fromEntries(
      Object.entries(step.env ?? {}).map(([k, v]) => [k, evaluate(String(v), context(run, defaultBranch))]),
    )
    const result = await runStep(
      step.run!,
      jobEnv({
        ...mapped,
        ...files.env,
        GITHUB_ACTIONS: 'true',
        CI: 'true',
        GITHUB_REPOSITORY: 'acme/admin-jobs',
        GITHUB_API_URL: api.url,
        GITHUB_EVENT_NAME: 'workflow_run',
      }),
    )
    return { ...result, files }
  }

  test('re-runs the failed jobs of a failed retryable run through the REST API with GITHUB_TOKEN', async () => {
    api.requests.length = 0
    const result = await emulate({})
    expect(result.code, result.output).toBe(0)
    expect(api.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'POST /repos/acme/admin-jobs/actions/runs/4242/rerun-failed-jobs',
    ])
    expect(api.requests[0]!.headers.authorization).toBe('Bearer ghs_default_token')
    expect(fs.readFileSync(result.files.output, 'utf8')).toBe('decision=retry\n')
    expect(fs.readFileSync(result.files.summary, 'utf8')).toContain('reports/daily run 4242')
  })

  test('re-runs a failed run in a repository whose default branch is not main', async () => {
    api.requests.length = 0
    const job = Object.values<any>(retry.doc.jobs)[0]
    const run = { head_branch: 'trunk' }
    expect(condition(job.if, context({ ...run, conclusion: 'failure' }, 'trunk'), 'success')).toBe(true)
    const result = await emulate(run, 'trunk')
    expect(result.code, result.output).toBe(0)
    expect(api.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'POST /repos/acme/admin-jobs/actions/runs/4242/rerun-failed-jobs',
    ])
  })

  test('leaves a job that is not marked retryable alone', async () => {
    api.requests.length = 0
    const result = await emulate({ name: 'monitoring/health-check' })
    expect(result.code, result.output).toBe(0)
    expect(api.requests).toHaveLength(0)
    expect(result.output).toContain('monitoring/health-check is not marked retryable')
  })

  test('keeps a hostile branch name out of the shell: it only reaches the decision as data', async () => {
    api.requests.length = 0
    const marker = `${retry.path}.pwned`
    const result = await emulate({ head_branch: `main"; touch ${marker}; echo "` })
    expect(result.code, result.output).toBe(0)
    expect(fs.existsSync(`${root}/${marker}`)).toBe(false)
    expect(api.requests).toHaveLength(0)
  })
})
