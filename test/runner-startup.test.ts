import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { defineJob } from '@admin-jobs/sdk'
import { runJob } from '@admin-jobs/sdk/platform'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { startRelay } from './support/relay.ts'
import { jobEnv, root } from './support/run.ts'

// Start-up is the module graph a run loads: a job that does nothing (connect, lock, history, exit) must not load
// what only some runs need. The process itself is under test here, so it is spawned, with a loader hook that records
// every module it loads.

let db: TestDatabase
let dir: string

beforeAll(async () => {
  db = await createTestDatabase('runner_startup')
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'aj-startup-'))
})
afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true })
})

/** Runs the no-op fixture job with `env` and returns its exit code and the modules it loaded (paths from the root). */
async function modulesOfRun(name: string, env: Record<string, string> = {}, args: string[] = []) {
  const file = path.join(dir, `${name}.txt`)
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      path.join(root, 'test/fixtures/loader/record-modules.mjs'),
      path.join(root, 'test/fixtures/scripts/test/noop.ts'),
      ...args,
    ],
    {
      cwd: root,
      env: jobEnv({ DATABASE_URL: db.url, RECORD_MODULES: file, ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let output = ''
  child.stdout.on('data', (c) => (output += c))
  child.stderr.on('data', (c) => (output += c))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  const urls = (await fs.readFile(file, 'utf8')).split('\n').filter(Boolean)
  const modules = urls.map((u) => (u.startsWith('file:') ? path.relative(root, new URL(u).pathname) : u))
  return { code, output, modules }
}

const packageOf = (module: string) =>
  /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(module)?.[1]

describe('a no-op job starts with only what it uses', () => {
  it('loads the driver and the runner, and none of mail, Slack, YAML, charts, Actions, cron parsing or the embedded server', async () => {
    const run = await modulesOfRun('plain')
    expect(run.code, run.output).toBe(0)
    expect(run.output).toMatch(/\[test\/noop\] succeeded in/)
    const packages = new Set(run.modules.map(packageOf).filter(Boolean))
    expect([...packages]).toEqual(['postgres'])
    const sdk = run.modules.filter((m) => m.startsWith('sdk/src/'))
    for (const lazy of [
      'sdk/src/charts/',
      'sdk/src/alerting/channels.ts',
      'sdk/src/alerting/templates.ts',
      'sdk/src/alerting/notices.ts',
      'sdk/src/alerting/policy.ts',
      'sdk/src/alerting/heartbeat.ts',
      'sdk/src/alerting/database-outage.ts',
      'sdk/src/runtime/help.ts',
      'sdk/src/database/embedded.ts',
      'sdk/src/schedules/',
      'sdk/src/records/state.ts',
    ])
      expect(
        sdk.filter((m) => m.startsWith(lazy)),
        lazy,
      ).toEqual([])
    // The budget: the job-facing API, the runner's phases and hooks, the driver's client and the run records.
    expect(sdk.length, sdk.join('\n')).toBeLessThanOrEqual(46)
  })

  it('loads the Actions toolkit on Actions, and the help text only for --help', async () => {
    const summary = path.join(dir, 'summary.md')
    const output = path.join(dir, 'output.txt')
    await fs.writeFile(summary, '')
    await fs.writeFile(output, '')
    const actions = await modulesOfRun('actions', {
      GITHUB_ACTIONS: 'true',
      CI: 'true',
      GITHUB_STEP_SUMMARY: summary,
      GITHUB_OUTPUT: output,
    })
    expect(actions.code, actions.output).toBe(0)
    expect(actions.modules.some((m) => packageOf(m) === '@actions/core')).toBe(true)
    expect(await fs.readFile(summary, 'utf8')).toContain('test/noop: succeeded')
    const help = await modulesOfRun('help', {}, ['--help'])
    expect(help.code, help.output).toBe(0)
    expect(help.output).toContain('Test fixture: does nothing')
    expect(help.modules).toContain('sdk/src/runtime/help.ts')
  })
})

describe('set-up connects the pools side by side', () => {
  it("opens the runner's two connections while the job's pool is still waiting for its first answer", async () => {
    // Every connection through the relay is held until three have arrived: one at a time, the job's pool would wait
    // for an answer that only comes once the runner's connections exist, and the run would never start.
    const relay = await startRelay(db.url)
    try {
      relay.freeze()
      const output: string[] = []
      const job = defineJob({ description: 'Does nothing', run: async () => ({ ok: true }) })
      const code = runJob(job, {
        id: 'test/side-by-side',
        argv: [],
        env: jobEnv({ DATABASE_URL: relay.url }),
        output: (_stream, line) => output.push(line),
      })
      try {
        const deadline = Date.now() + 5_000
        while (relay.accepted < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
        expect(relay.accepted, 'connections accepted while the first is unanswered').toBe(3)
      } finally {
        relay.thaw()
      }
      expect(await code, output.join('\n')).toBe(0)
      const [run] = await db.sql`select status from jobs.runs where job = 'test/side-by-side'`
      expect(run?.status).toBe('succeeded')
    } finally {
      await relay.close()
    }
  })
})
