import { type ChildProcess, spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import path from 'node:path'
import { runScriptInProcess } from '@admin-jobs/sdk/testing'

/** The repository root. */
export const root = path.resolve(import.meta.dirname, '../..')

/** The `pnpm jobs` entry point, as the SDK package exports it. */
export const cliScript = createRequire(import.meta.url).resolve('@admin-jobs/sdk/cli')

/** The environment a job sees in tests: only PATH/HOME plus what the test gives (no CI, no Actions, no secrets). */
export function jobEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    LANG: 'C.UTF-8',
    TZ: 'UTC',
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v
  return env
}

/** The result of a finished script. */
export interface ScriptResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  output: string
}

/** A running script, for kill tests. */
export interface RunningScript {
  child: ChildProcess
  output(): string
  /** Resolves when the output contains `text` (rejects after `timeoutMs`). */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>
  done: Promise<ScriptResult>
}

/** Starts `node --import tsx <script> ...args` from the repository root. */
export function startScript(
  script: string,
  options: { args?: string[]; env?: Record<string, string | undefined> } = {},
): RunningScript {
  const child = spawn(process.execPath, ['--import', 'tsx', path.resolve(root, script), ...(options.args ?? [])], {
    cwd: root,
    env: jobEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  let output = ''
  const waiters = new Set<() => void>()
  const onData = (which: 'out' | 'err') => (chunk: Buffer) => {
    const text = chunk.toString()
    if (which === 'out') stdout += text
    else stderr += text
    output += text
    for (const w of waiters) w()
  }
  child.stdout!.on('data', onData('out'))
  child.stderr!.on('data', onData('err'))
  const done = new Promise<ScriptResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, output }))
  })
  return {
    child,
    output: () => output,
    waitFor(text, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (typeof text === 'string' ? output.includes(text) : text.test(output)) {
            waiters.delete(check)
            clearTimeout(timer)
            resolve()
          }
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`timed out waiting for ${text} in output:\n${output}`))
        }, timeoutMs)
        waiters.add(check)
        void done.then(() => {
          check()
          if (waiters.has(check)) {
            waiters.delete(check)
            clearTimeout(timer)
            reject(new Error(`process exited before printing ${text}:\n${output}`))
          }
        })
        check()
      })
    },
    done,
  }
}

/** Runs a script to completion. */
export function runScript(script: string, options: { args?: string[]; env?: Record<string, string | undefined> } = {}) {
  return startScript(script, options).done
}

/**
 * Runs a job script's job in this process, with the same environment a spawned script would see (jobEnv), and the
 * same result shape as runScript (`signal` is always null): use it unless the process itself is under test.
 */
export async function runJobScript(
  script: string,
  options: { args?: string[]; env?: Record<string, string | undefined> } = {},
): Promise<ScriptResult> {
  const result = await runScriptInProcess(path.resolve(root, script), { argv: options.args, env: jobEnv(options.env) })
  return { ...result, signal: null }
}

/**
 * Runs `pnpm jobs <args>` in this process (the CLI's `main`), with the environment a spawned CLI would see (jobEnv),
 * and the same result shape as runScript (`signal` is always null): use it unless the process itself is under test.
 */
export async function runCli(
  args: string[],
  options: { env?: Record<string, string | undefined> } = {},
): Promise<ScriptResult> {
  const { main } = await import('@admin-jobs/sdk/cli')
  let stdout = ''
  let stderr = ''
  let output = ''
  const code = await main(args, {
    env: jobEnv(options.env),
    stdout: (s) => {
      stdout += `${s}\n`
      output += `${s}\n`
    },
    stderr: (s) => {
      stderr += `${s}\n`
      output += `${s}\n`
    },
  })
  return { code, signal: null, stdout, stderr, output }
}
