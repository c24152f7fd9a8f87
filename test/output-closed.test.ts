import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { createTestDatabase } from './support/db.ts'
import { cliScript, jobEnv, root } from './support/run.ts'

// Output is never worth a run: when whoever reads the output goes away (`| head -1`, a closed terminal), writes fail
// with EPIPE, and the run must still finish and record its outcome.

interface Finished {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `command` with its output pipes closed on the reading side before it writes anything. */
function runWithClosedOutput(args: string[], env: Record<string, string>): Promise<Finished> {
  const child = spawn(process.execPath, ['--import', 'tsx', cliScript, ...args], {
    cwd: root,
    env: jobEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout.destroy()
  child.stderr.destroy()
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout: '', stderr: '' })))
}

/** Runs a shell pipeline with bash's pipefail, so a failing first command fails the pipeline. */
function pipeline(script: string, env: Record<string, string>): Promise<Finished> {
  const child = spawn('bash', ['-c', `set -o pipefail; ${script}`], { cwd: root, env: jobEnv(env) })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })))
}

describe('a closed output', () => {
  it('does not stop a job run through the CLI: it exits 0 and its run is recorded as succeeded', async () => {
    const db = await createTestDatabase('output_closed_run')
    const result = await runWithClosedOutput(['run', 'cleanup/tokens'], { DATABASE_URL: db.url })
    expect(result.code).toBe(0)
    const runs = await db.sql`select job, status from jobs.runs`
    expect(runs).toEqual([{ job: 'cleanup/tokens', status: 'succeeded' }])
  })

  it('does not stop `jobs run … 2>&1 | head -1`: one line shown, the run completes and is recorded', async () => {
    const db = await createTestDatabase('output_head_run')
    const cli = `node --import tsx ${JSON.stringify(cliScript)}`
    const result = await pipeline(`${cli} run cleanup/tokens 2>&1 | head -1`, { DATABASE_URL: db.url })
    expect(result.code).toBe(0)
    expect(result.stdout.trim().split('\n')).toHaveLength(1)
    expect(result.stdout).toContain('starting')
    const runs = await db.sql`select job, status from jobs.runs`
    expect(runs).toEqual([{ job: 'cleanup/tokens', status: 'succeeded' }])
  })

  it('does not crash `jobs list` with write EPIPE', async () => {
    const db = await createTestDatabase('output_closed_list')
    const closed = await runWithClosedOutput(['list'], { DATABASE_URL: db.url })
    expect(closed.code).toBe(0)
    // Its error output stays readable here, and must not hold a crash report.
    const cli = `node --import tsx ${JSON.stringify(cliScript)}`
    const head = await pipeline(`${cli} list | head -2`, { DATABASE_URL: db.url })
    expect(head.code).toBe(0)
    expect(head.stdout.trim().split('\n')).toHaveLength(2)
    expect(head.stderr).not.toContain('EPIPE')
  })
})
