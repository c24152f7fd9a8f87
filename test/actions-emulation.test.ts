import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript } from './support/run.ts'

const fixture = (name: string) => `test/fixtures/scripts/test/${name}.ts`

let db: TestDatabase
let dir: string
let summaryFile: string
let outputFile: string

beforeAll(async () => {
  db = await createTestDatabase('actions_emulation')
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'aj-actions-'))
})

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true })
})

beforeEach(async (context) => {
  summaryFile = path.join(dir, `summary-${context.task.id}.md`)
  outputFile = path.join(dir, `output-${context.task.id}.txt`)
  await fs.writeFile(summaryFile, '')
  await fs.writeFile(outputFile, '')
})

function actionsEnv(extra: Record<string, string> = {}) {
  return {
    GITHUB_ACTIONS: 'true',
    CI: 'true',
    DATABASE_URL: db.url,
    GITHUB_STEP_SUMMARY: summaryFile,
    GITHUB_OUTPUT: outputFile,
    GITHUB_RUN_ID: '777',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_REPOSITORY: 'acme/admin',
    GITHUB_EVENT_NAME: 'schedule',
    ...extra,
  }
}

async function lastRun(job: string) {
  const [run] = await db.sql`select * from jobs.runs where job = ${job} order by id desc limit 1`
  return run!
}

describe('on GitHub Actions', () => {
  it('writes a job summary and step outputs, and records the trigger and the run URL', async () => {
    const result = await runScript(fixture('ok'), { env: actionsEnv() })
    expect(result.code, result.output).toBe(0)
    const summary = await fs.readFile(summaryFile, 'utf8')
    expect(summary).toContain('### ✅ test/ok: succeeded')
    expect(summary).toContain('| Outcome | succeeded |')
    expect(summary).toMatch(/\| Duration \| [\d.]+m?s \|/)
    expect(summary).toContain('| Dry run | no |')
    expect(summary).toContain('| processed | 3 |')
    const outputs = await fs.readFile(outputFile, 'utf8')
    expect(outputs).toMatch(/^status<<(.+)\nsucceeded\n\1$/m)
    expect(outputs).toContain('{"processed":3,"skipped":1}')
    // The log folds into a setup group and a run group; the start and completion lines stay outside both.
    const lines = result.stdout.split('\n')
    const at = (pattern: RegExp) => lines.findIndex((l) => pattern.test(l))
    const order = [/starting/, /^::group::setup: /, /^::endgroup::/, /^::group::run test\/ok/, /succeeded in/]
    const indexes = order.map(at)
    expect(
      indexes.every((i) => i >= 0),
      result.stdout,
    ).toBe(true)
    expect([...indexes].sort((a, b) => a - b)).toEqual(indexes)
    expect(lines.filter((l) => l.startsWith('::group::'))).toHaveLength(2)
    expect(lines.filter((l) => l.startsWith('::endgroup::'))).toHaveLength(2)
    expect(lines.findLastIndex((l) => l.startsWith('::endgroup::'))).toBeLessThan(at(/succeeded in/))
    expect(await lastRun('test/ok')).toMatchObject({
      trigger: 'schedule',
      attempt: 1,
      run_url: 'https://github.com/acme/admin/actions/runs/777/attempts/1',
    })
  })

  it('marks a dry run in the summary', async () => {
    const result = await runScript(fixture('ok'), {
      env: actionsEnv({ DRY_RUN: 'true', GITHUB_EVENT_NAME: 'workflow_dispatch' }),
    })
    expect(result.code, result.output).toBe(0)
    expect(await fs.readFile(summaryFile, 'utf8')).toContain('### ✅ test/ok: succeeded (dry run)')
    expect(await lastRun('test/ok')).toMatchObject({ trigger: 'workflow_dispatch', dry_run: true })
  })

  it('prints an ::error annotation with the stack for a failure and summarises it', async () => {
    const result = await runScript(fixture('fail'), { env: actionsEnv() })
    expect(result.code, result.output).toBe(1)
    const annotation = result.stdout.split('\n').find((l) => l.startsWith('::error'))
    expect(annotation).toMatch(/^::error title=test\/fail::.*failed in [\d.]+m?s: widget sync failed: upstream said no/)
    // Multi-line annotations are escaped onto one line, stack included.
    expect(annotation).toMatch(/%0A\s+at .*fail\.ts/)
    const summary = await fs.readFile(summaryFile, 'utf8')
    expect(summary).toContain('### ❌ test/fail: failed')
    expect(summary).toContain('> **Error:** widget sync failed: upstream said no')
    expect(await fs.readFile(outputFile, 'utf8')).toMatch(/^status<<(.+)\nfailed\n\1$/m)
  })

  it('records a re-run attempt as trigger rerun with the attempt number and its URL', async () => {
    const result = await runScript(fixture('ok'), { env: actionsEnv({ GITHUB_RUN_ATTEMPT: '2' }) })
    expect(result.code, result.output).toBe(0)
    expect(await lastRun('test/ok')).toMatchObject({
      trigger: 'rerun',
      attempt: 2,
      run_url: 'https://github.com/acme/admin/actions/runs/777/attempts/2',
    })
  })

  it('masks every secret: ::add-mask:: first, and never the value in clear anywhere else', async () => {
    const url = new URL(db.url)
    // A password the server ignores under trust auth, or the real one when the server has one.
    if (!url.password) url.password = 'Sup3r-Secret-Pw'
    const password = decodeURIComponent(url.password)
    const webhook = 'http://127.0.0.1:1/services/T000/B000/XyzSecretToken'
    const result = await runScript(fixture('secret'), {
      env: actionsEnv({ DATABASE_URL: url.toString(), SLACK_WEBHOOK_URL: webhook, FIXTURE_FAIL: 'true' }),
    })
    expect(result.code, result.output).toBe(1)
    const lines = result.output.split('\n')
    const masks = lines.filter((l) => l.startsWith('::add-mask::'))
    expect(masks).toEqual(expect.arrayContaining([`::add-mask::${password}`, `::add-mask::${webhook}`]))
    const firstMask = lines.findIndex((l) => l.startsWith('::add-mask::'))
    const firstOther = lines.findIndex((l) => l.trim() !== '' && !l.startsWith('::add-mask::'))
    expect(firstMask).toBeLessThan(firstOther)
    const clear = lines.filter((l) => !l.startsWith('::add-mask::')).join('\n')
    expect(clear).toMatch(/database is .*:\*\*\*@/)
    expect(clear).toContain('slack webhook is ***')
    expect(clear).not.toContain(password)
    expect(clear).not.toContain('XyzSecretToken')
    const summary = await fs.readFile(summaryFile, 'utf8')
    expect(summary).toContain('> **Error:** could not reach ***')
    expect(summary).not.toContain('XyzSecretToken')
    const run = await lastRun('test/secret')
    expect(run.error).toContain('could not reach ***')
    expect(run.error).not.toContain('XyzSecretToken')
  })
})

describe('locally', () => {
  it('prints plain lines with no workflow commands and no secret', async () => {
    const webhook = 'http://127.0.0.1:1/services/T000/B000/XyzSecretToken'
    const result = await runScript(fixture('secret'), {
      env: { DATABASE_URL: db.url, SLACK_WEBHOOK_URL: webhook, FIXTURE_FAIL: 'true', GITHUB_STEP_SUMMARY: summaryFile },
    })
    expect(result.code, result.output).toBe(1)
    expect(result.output).not.toMatch(/^::/m)
    expect(result.output).not.toContain('XyzSecretToken')
    expect(result.stdout).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}\[test\/secret\] slack webhook is \*\*\*$/m)
    expect(await fs.readFile(summaryFile, 'utf8')).toBe('')
    expect((await lastRun('test/secret')).trigger).toBe('local')
  })
})
