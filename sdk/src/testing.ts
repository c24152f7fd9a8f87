// Helpers for testing jobs in-process, through the same runner a job script uses.
import type { Env } from './config/config.ts'
import type { RunHook } from './runtime/hooks.ts'
import { defaultHooks, runJob } from './runtime/runner.ts'
import type { Job } from './runtime/types.ts'

/** What an in-process run ended with: its exit code and the log lines it wrote. */
export interface InProcessResult {
  code: number
  output: string
}

/** Options of runInProcess; `env` is the whole environment the run sees (nothing comes from process.env). */
export interface InProcessOptions {
  id?: string
  env?: Env
  argv?: readonly string[]
  hooks?: readonly RunHook[]
}

/** Runs `job` as its script would (phases, hooks, history, exit code), in this process, collecting its log. */
export async function runInProcess(job: Job, options: InProcessOptions = {}): Promise<InProcessResult> {
  const lines: string[] = []
  const code = await runJob(job, {
    id: options.id ?? 'test/job',
    env: options.env ?? {},
    argv: options.argv ?? [],
    hooks: options.hooks ?? defaultHooks(),
    output: (_stream, line) => lines.push(line),
  })
  return { code, output: lines.join('\n') }
}
