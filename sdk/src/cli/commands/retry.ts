import { runRetryStep } from '../../github/retry-step.ts'
import type { Command } from './command.ts'

/** `pnpm jobs retry`: the step of .github/workflows/retry.yml, which re-runs the failed jobs of a failed job run. */
const retry: Command = {
  name: 'retry',
  usage: 'retry',
  description: "retry.yml's step: re-run the failed jobs of a failed run of a retryable job (reads RETRY_*)",
  flags: {},
  settings: [
    { name: 'RETRY_WORKFLOW', kind: 'text', description: 'the completed run’s workflow name (a job id)' },
    { name: 'RETRY_RUN_ID', kind: 'whole number', description: 'its run id' },
    { name: 'RETRY_RUN_ATTEMPT', kind: 'whole number ≥ 1', default: '1', description: 'the attempt that completed' },
    { name: 'RETRY_CONCLUSION', kind: 'text', description: 'failure, timed_out, cancelled, …' },
    { name: 'RETRY_EVENT', kind: 'text', description: 'the event that started it (schedule, workflow_dispatch, …)' },
    { name: 'RETRY_BRANCH', kind: 'text', description: 'the branch it ran on' },
    { name: 'RETRY_DEFAULT_BRANCH', kind: 'text', description: 'the repository’s default branch' },
    {
      name: 'RETRY_DELAY_SECONDS',
      kind: 'whole number 0–300',
      default: '60',
      description: 'wait before re-running, times the attempt',
    },
    { name: 'GITHUB_TOKEN', kind: 'text', description: 'a token with Actions: write (needed only to re-run)' },
    { name: 'GITHUB_REPOSITORY', kind: 'owner/name', description: 'set by Actions' },
    { name: 'GITHUB_API_URL', kind: 'URL', default: 'https://api.github.com', description: 'set by Actions' },
    { name: 'GITHUB_OUTPUT, GITHUB_STEP_SUMMARY', kind: 'file', description: 'where the decision and summary go' },
  ],
  notes: ['Which jobs are retryable is the list in retry.yml (on.workflow_run.workflows); see docs/actions.md.'],
  exitCodes: [
    { code: '0', meaning: 're-run requested, or deliberately not re-run' },
    { code: '1', meaning: 'GitHub refused the re-run' },
  ],
  run: (_args, io) => runRetryStep(io.env, { out: io.stdout }),
}

export default retry
