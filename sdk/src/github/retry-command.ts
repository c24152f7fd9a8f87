import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createEnvReader, type Env } from '../config/config.ts'
import { ConfigError, firstLine, NonRetryableError, toError } from '../runtime/errors.ts'
import { retry } from '../runtime/retry.ts'
import { repoRoot } from '../schedules/schedules.ts'
import { type CompletedRun, decideRetry, type RetryDecision, retryableWorkflows } from './retry-decision.ts'

/** What one invocation of the retry step did. */
export interface RetryOutcome {
  decision: RetryDecision
  run: CompletedRun & { id: string }
}

/**
 * The retry workflow's step: reads the completed run from `RETRY_*` variables (mapped from the `workflow_run`
 * event through `env:`), decides with decideRetry, waits, then POSTs `rerun-failed-jobs`. Returns the exit code:
 * 0 re-run requested or deliberately not, 1 the API refused, 2 a missing or malformed variable.
 */
export async function runRetryStep(
  env: Env,
  options: { root?: string; sleep?: (ms: number) => Promise<void>; out?: (line: string) => void } = {},
): Promise<number> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`))
  let outcome: RetryOutcome
  let request: { url: string; token: string }
  try {
    const read = createEnvReader(env)
    const required = (name: string) => {
      const value = read.string(name)
      if (value === undefined) throw new ConfigError(`${name} is not set`, { variable: name })
      return value
    }
    const root = options.root ?? repoRoot()
    const retryable = retryableWorkflows(fs.readFileSync(path.join(root, '.github', 'workflows', 'retry.yml'), 'utf8'))
    const id = required('RETRY_RUN_ID')
    if (!/^\d+$/.test(id))
      throw new ConfigError(`RETRY_RUN_ID must be a run id (got "${id}")`, { variable: 'RETRY_RUN_ID' })
    const repository = required('GITHUB_REPOSITORY')
    if (!/^[\w.-]+\/[\w.-]+$/.test(repository))
      throw new ConfigError(`GITHUB_REPOSITORY must be owner/name (got "${repository}")`, {
        variable: 'GITHUB_REPOSITORY',
      })
    const run = {
      id,
      workflow: required('RETRY_WORKFLOW'),
      conclusion: required('RETRY_CONCLUSION'),
      attempt: read.integer('RETRY_RUN_ATTEMPT', 1, { min: 1 }),
      event: required('RETRY_EVENT'),
      branch: read.string('RETRY_BRANCH'),
    }
    const decision = decideRetry(run, {
      retryable,
      defaultBranch: required('RETRY_DEFAULT_BRANCH'),
      delaySeconds: read.integer('RETRY_DELAY_SECONDS', 60, { min: 0, max: 600 }),
    })
    outcome = { decision, run }
    const apiUrl = (read.url('GITHUB_API_URL', ['https', 'http']) ?? 'https://api.github.com').replace(/\/+$/, '')
    request = {
      url: `${apiUrl}/repos/${repository}/actions/runs/${id}/rerun-failed-jobs`,
      token: decision.retry ? required('GITHUB_TOKEN') : '',
    }
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    out(`::error::retry: ${err.message}`)
    return 2
  }

  const { decision, run } = outcome
  const subject = `${run.workflow} run ${run.id} (attempt ${run.attempt}, ${run.conclusion})`
  if (!decision.retry) {
    out(`not re-running ${subject}: ${decision.reason}`)
    writeStepFiles(env, { decision: 'skip', summary: `### ↩️ Retry: not re-run\n\n${subject}: ${decision.reason}` })
    return 0
  }
  out(`${subject}: ${decision.reason}; waiting ${decision.delaySeconds}s first`)
  await (options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))))(decision.delaySeconds * 1000)
  try {
    await retry({ attempts: 3, minDelay: '2s', maxDelay: '10s' }, () => rerunFailedJobs(request.url, request.token))
  } catch (err) {
    const error = toError(err)
    out(`::error::retry: could not re-run ${subject}: ${firstLine(error)}`)
    writeStepFiles(env, { decision: 'error', summary: `### ❌ Retry failed\n\n${subject}: ${firstLine(error)}` })
    return 1
  }
  out(`re-run requested: attempt ${decision.nextAttempt} of ${run.workflow} run ${run.id}`)
  writeStepFiles(env, {
    decision: 'retry',
    summary: `### 🔁 Retry: re-running failed jobs\n\n${subject}: ${decision.reason}.`,
  })
  return 0
}

/** POSTs rerun-failed-jobs; GitHub answers 201 Created. 429/5xx are transient (retried), anything else is final. */
async function rerunFailedJobs(url: string, token: string): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      accept: 'application/vnd.github+json',
      authorization: `Bearer ${token}`,
      'x-github-api-version': '2022-11-28',
      'user-agent': 'admin-jobs-retry',
    },
  })
  if (response.ok) return
  const body = (await response.text()).slice(0, 300)
  const message = `POST ${new URL(url).pathname} answered ${response.status}: ${body}`
  if (response.status === 429 || response.status >= 500)
    throw Object.assign(new Error(message), { status: response.status })
  throw new NonRetryableError(message)
}

function writeStepFiles(env: Env, step: { decision: string; summary: string }): void {
  if (env.GITHUB_OUTPUT) fs.appendFileSync(env.GITHUB_OUTPUT, `decision=${step.decision}\n`)
  if (env.GITHUB_STEP_SUMMARY) fs.appendFileSync(env.GITHUB_STEP_SUMMARY, `${step.summary}\n`)
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runRetryStep(process.env).then(
    (code) => {
      process.exitCode = code
    },
    (err) => {
      process.stderr.write(`retry: ${toError(err).stack}\n`)
      process.exitCode = 1
    },
  )
}
