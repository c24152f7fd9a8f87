// Helpers for testing jobs in-process, through the same runner a job script uses.
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Env } from './config/config.ts'
import { isJob } from './runtime/define.ts'
import type { RunHook } from './runtime/hooks.ts'
import { jobIdFromFile } from './runtime/main.ts'
import { defaultHooks, runJob } from './runtime/runner.ts'
import type { Job } from './runtime/types.ts'

/** What an in-process run ended with: its exit code and the log lines it wrote (all, and per stream). */
export interface InProcessResult {
  code: number
  output: string
  stdout: string
  stderr: string
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
  const lines: { stream: 'out' | 'err'; line: string }[] = []
  const code = await runJob(job, {
    id: options.id ?? 'test/job',
    env: options.env ?? {},
    argv: options.argv ?? [],
    hooks: options.hooks ?? defaultHooks(),
    output: (stream, line) => lines.push({ stream, line }),
  })
  const text = (which?: 'out' | 'err') =>
    lines
      .filter((l) => !which || l.stream === which)
      .map((l) => `${l.line}\n`)
      .join('')
  return { code, output: text(), stdout: text('out'), stderr: text('err') }
}

/**
 * Runs the job a script exports, in this process, as running the script would (its id from its path): the fast way
 * to test what a job does. Spawn the script instead where signals, exit codes of the process or kills are the point.
 */
export async function runScriptInProcess(
  file: string,
  options: Omit<InProcessOptions, 'id'> = {},
): Promise<InProcessResult> {
  const module = (await import(pathToFileURL(path.resolve(file)).href)) as { default?: unknown }
  if (!isJob(module.default)) throw new Error(`${file} does not export a job`)
  return runInProcess(module.default, { ...options, id: jobIdFromFile(file) })
}
