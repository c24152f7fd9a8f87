import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describeDuplicate, duplicateWorkflows, loadSchedules } from '@admin-jobs/sdk/platform'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { createTestDatabase, serverUrl, type TestDatabase } from './support/db.ts'
import { jobEnv, root } from './support/run.ts'

// `pnpm jobs new` is run in a copy of the project (its own sdk, its own node_modules/@admin-jobs/sdk, the other
// packages linked), so the files it writes, `jobs list` and the tests run there never touch this tree.

let copy: string
let db: TestDatabase

/** Copies the project's files (not its tests but the policy test) into a temporary directory that runs on its own. */
function copyProject(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'admin-jobs-new-'))
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f && fs.existsSync(path.join(root, f)))
    .filter((f) => !/^test\/[^/]+\.test\.ts$/.test(f) || f === 'test/workflows-policy.test.ts')
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true })
    fs.copyFileSync(path.join(root, f), path.join(dir, f))
  }
  fs.mkdirSync(path.join(dir, 'node_modules', '@admin-jobs'), { recursive: true })
  for (const entry of fs.readdirSync(path.join(root, 'node_modules'))) {
    if (entry === '@admin-jobs' || entry === '.vite' || entry === '.vitest') continue
    fs.symlinkSync(path.join(root, 'node_modules', entry), path.join(dir, 'node_modules', entry))
  }
  fs.symlinkSync('../../sdk', path.join(dir, 'node_modules', '@admin-jobs', 'sdk'))
  fs.symlinkSync(path.join(root, 'sdk', 'node_modules'), path.join(dir, 'sdk', 'node_modules'))
  return dir
}

/** Runs a command in the copy and collects its output. */
function runIn(dir: string, args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 240_000) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, args, { cwd: dir, env: jobEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => (stdout += c))
    child.stderr.on('data', (c) => (stderr += c))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

const jobs = (dir: string, args: string[], env: Record<string, string | undefined> = {}) =>
  runIn(dir, ['--import', 'tsx', path.join(dir, 'sdk', 'src', 'cli', 'main.ts'), ...args], env)

const vitest = (dir: string, args: string[]) =>
  runIn(dir, [path.join(dir, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...args], {
    TEST_DATABASE_URL: serverUrl(),
    NO_COLOR: '1',
  }).then((r) => ({ ...r, stdout: r.stdout.replace(/\x1b\[[0-9;]*m/g, '') }))

const newFiles = [
  'scripts/demo/hello-world.ts',
  '.github/workflows/demo-hello-world.yml',
  'test/demo-hello-world.test.ts',
]

beforeAll(async () => {
  copy = copyProject()
  db = await createTestDatabase('cli_new')
})

afterAll(() => {
  if (copy) fs.rmSync(copy, { recursive: true, force: true })
})

describe('pnpm jobs new', () => {
  it('writes the script, the workflow and the test, and refuses to overwrite them', async () => {
    const made = await jobs(copy, ['new', 'demo/hello-world', '--cron', '17 */2 * * *', '--critical'])
    expect(made.code, made.stderr).toBe(0)
    for (const f of newFiles) {
      expect(fs.existsSync(path.join(copy, f)), f).toBe(true)
      expect(made.stdout).toContain(f)
    }
    expect(fs.readFileSync(path.join(copy, newFiles[0]!), 'utf8')).toMatch(
      /export default defineJob\(\{[\s\S]*critical: true/,
    )
    const workflow = parse(fs.readFileSync(path.join(copy, newFiles[1]!), 'utf8'))
    expect(workflow.name).toBe('demo/hello-world')
    expect(workflow.on.schedule).toEqual([{ cron: '17 */2 * * *' }])
    expect(workflow.concurrency).toEqual({ group: 'job-demo-hello-world', 'cancel-in-progress': false })

    fs.appendFileSync(path.join(copy, newFiles[0]!), '// edited by hand\n')
    const again = await jobs(copy, ['new', 'demo/hello-world'])
    expect(again.code).toBe(2)
    expect(again.stderr).toContain('demo/hello-world exists already')
    expect(fs.readFileSync(path.join(copy, newFiles[0]!), 'utf8')).toContain('// edited by hand')

    // Another id whose test file is already there: refused, and nothing of it written.
    fs.writeFileSync(path.join(copy, 'test', 'demo-taken.test.ts'), '// mine\n')
    const taken = await jobs(copy, ['new', 'demo/taken'])
    expect(taken.code).toBe(2)
    expect(taken.stderr).toContain('refusing to overwrite test/demo-taken.test.ts')
    expect(fs.existsSync(path.join(copy, 'scripts', 'demo', 'taken.ts'))).toBe(false)
    fs.rmSync(path.join(copy, 'test', 'demo-taken.test.ts'))
  })

  it('refuses a bad id or cron with exit 2 and a message saying what is wrong, writing nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['new', 'Demo/Hello'], /job id must be <area>\/<job>/],
      [['new', 'demo'], /job id must be <area>\/<job>/],
      [['new', 'demo/lib'], /reserved name/],
      [['new', 'demo/bad', '--cron', '* * * * *'], /at most every 5 minutes/],
      [['new', 'demo/bad', '--cron', '0 3 * * *'], /minute 0.*"17 3 \* \* \*"/],
      [['new', 'demo/bad', '--cron', '7 25 * * *'], /not a valid cron expression/],
      [['new', 'demo/bad', '--cron', '7 3 * *'], /5 fields/],
      [['new'], /usage: pnpm jobs new/],
    ]
    for (const [args, message] of cases) {
      const result = await jobs(copy, args)
      expect(result.code, args.join(' ')).toBe(2)
      expect(result.stderr, args.join(' ')).toMatch(message)
    }
    expect(fs.existsSync(path.join(copy, 'scripts', 'demo', 'bad.ts'))).toBe(false)
    expect(fs.existsSync(path.join(copy, '.github', 'workflows', 'demo-bad.yml'))).toBe(false)
  })

  it('makes a job that jobs list shows with its schedule', async () => {
    const list = await jobs(copy, ['list', '--json'], { DATABASE_URL: db.url })
    expect(list.code, list.stderr).toBe(0)
    const row = (JSON.parse(list.stdout) as { job: string; critical: boolean; workflow: string; schedule: any }[]).find(
      (r) => r.job === 'demo/hello-world',
    )
    expect(row).toMatchObject({
      critical: true,
      workflow: '.github/workflows/demo-hello-world.yml',
      schedule: { cron: ['17 */2 * * *'] },
    })
    const table = await jobs(copy, ['list'], { DATABASE_URL: db.url })
    expect(table.stdout).toMatch(/demo\/hello-world \*\s+17 \*\/2 \* \* \*/)
  })

  it('makes a job whose own test and the workflow policy tests pass', async () => {
    const result = await vitest(copy, [
      'test/demo-hello-world.test.ts',
      'test/workflows-policy.test.ts',
      '-t',
      'demo/hello-world|demo-hello-world\\.yml|the workflow set',
    ])
    expect(result.code, result.stdout + result.stderr).toBe(0)
    // Both files ran tests, and none was skipped for want of a match.
    expect(result.stdout).toMatch(/test\/demo-hello-world\.test\.ts \(3 tests\)/)
    // The new workflow's own checks (every workflow's and every job workflow's, about 20) and the set's all ran.
    const passed = Number(/Tests\s+(\d+) passed/.exec(result.stdout)?.[1])
    expect(passed).toBeGreaterThanOrEqual(20)
    expect(result.stdout).not.toMatch(/\d+ failed/)
  })
})

describe('two workflows that run the same script', () => {
  it('are an error in jobs list and in the policy tests, naming both workflows', async () => {
    // The mistake a copied workflow makes: a new cron and timeout, but still the sessions script.
    const original = fs.readFileSync(path.join(copy, '.github', 'workflows', 'cleanup-sessions.yml'), 'utf8')
    fs.writeFileSync(
      path.join(copy, '.github', 'workflows', 'cleanup-stale-carts.yml'),
      original.replace('"7 */6 * * *"', '"37 2 * * *"').replace('timeout-minutes: 20', 'timeout-minutes: 30'),
    )
    const list = await jobs(copy, ['list'], { DATABASE_URL: db.url })
    expect(list.code).toBe(1)
    expect(list.stderr).toContain(
      'error: .github/workflows/cleanup-sessions.yml and .github/workflows/cleanup-stale-carts.yml both run scripts/cleanup/sessions.ts',
    )
    // The policy test's own check, run in-process on the copy (the test above runs the policy file itself there).
    expect(duplicateWorkflows(loadSchedules(copy)).map(describeDuplicate)).toEqual([
      expect.stringContaining('.github/workflows/cleanup-stale-carts.yml'),
    ])
    fs.rmSync(path.join(copy, '.github', 'workflows', 'cleanup-stale-carts.yml'))
  })
})
