import fs from 'node:fs'
import path from 'node:path'
import { createEnvReader, type Env } from '../config/config.ts'
import { ConfigError, firstLine, toError } from '../runtime/errors.ts'
import { repoRoot } from '../schedules/schedules.ts'
import { createGitHubClient, type GitHubClient } from './client.ts'
import {
  type CompletedRun,
  decideRetry,
  type RetryDecision,
  retryableWorkflows,
  retryDelayLimitSeconds,
} from './retry-decision.ts'

/** What one invocation of the retry step did. */
export interface RetryOutcome {
  decision: RetryDecision
  run: CompletedRun & { id: string }
}

/**
 * The retry workflow's step (`pnpm jobs retry`): reads the completed run from `RETRY_*` variables (mapped from the
 * `workflow_run` event through `env:`), decides with decideRetry, waits, then asks GitHub to re-run its failed jobs
 * (the GitHub client retries 5xx and waits out rate limits). Returns the exit code: 0 re-run requested or deliberately
 * not, 1 the API refused, 2 a missing or malformed variable.
 */
export async function runRetryStep(
  env: Env,
  options: { root?: string; sleep?: (ms: number) => Promise<void>; out?: (line: string) => void } = {},
): Promise<number> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`))
  let outcome: RetryOutcome
  let client: GitHubClient | undefined
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
      delaySeconds: read.integer('RETRY_DELAY_SECONDS', 60, { min: 0, max: retryDelayLimitSeconds }),
    })
    outcome = { decision, run }
    const apiUrl = read.url('GITHUB_API_URL', ['https', 'http'])
    if (decision.retry) client = createGitHubClient({ token: required('GITHUB_TOKEN'), repository, apiUrl })
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    out(`::error::retry: ${err.message}`)
    return 2
  }

  const { decision, run } = outcome
  const subject = `${run.workflow} run ${run.id} (attempt ${run.attempt}, ${run.conclusion})`
  if (!decision.retry || !client) {
    out(`not re-running ${subject}: ${decision.reason}`)
    writeStepFiles(env, { decision: 'skip', summary: `### ↩️ Retry: not re-run\n\n${subject}: ${decision.reason}` })
    return 0
  }
  out(`${subject}: ${decision.reason}; waiting ${decision.delaySeconds}s first`)
  await (options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))))(decision.delaySeconds * 1000)
  try {
    await client.rerunFailedJobs(run.id)
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

function writeStepFiles(env: Env, step: { decision: string; summary: string }): void {
  if (env.GITHUB_OUTPUT) fs.appendFileSync(env.GITHUB_OUTPUT, `decision=${step.decision}\n`)
  if (env.GITHUB_STEP_SUMMARY) fs.appendFileSync(env.GITHUB_STEP_SUMMARY, `${step.summary}\n`)
}
