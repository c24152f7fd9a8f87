import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { main } from '@admin-jobs/sdk/cli'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { cliScript, runScript } from './support/run.ts'

let db: TestDatabase
const hasPsql = fs.existsSync('/usr/bin/psql')
/** This machine's PATH less psql: one directory linking every program on PATH but psql. */
const noPsqlPath = fs.mkdtempSync(path.join(os.tmpdir(), 'no-psql-'))
for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).reverse()) {
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (name === 'psql') continue
    fs.rmSync(path.join(noPsqlPath, name), { force: true })
    fs.symlinkSync(path.join(dir, name), path.join(noPsqlPath, name))
  }
}
afterAll(() => fs.rmSync(noPsqlPath, { recursive: true, force: true }))

beforeAll(async () => {
  db = await createTestDatabase('psql')
  await db.sql`insert into jobs.runs (job, status, trigger) values ('test/psql', 'succeeded', 'local')`
})

const withPassword = () => {
  const u = new URL(db.url)
  u.password = 'not-a-real-secret'
  return u.toString()
}

describe('pnpm jobs psql', () => {
  it.skipIf(!hasPsql)('runs psql on DATABASE_URL with the arguments given and exits with its code', async () => {
    const ok = await runScript(cliScript, {
      args: ['psql', '-At', '-c', "select job || ':' || status from jobs.runs"],
      env: { DATABASE_URL: db.url },
    })
    expect(ok.code, ok.output).toBe(0)
    expect(ok.stdout.trim()).toBe('test/psql:succeeded')
    expect(ok.stderr).toContain(`psql on 127.0.0.1:`)
    const failed = await runScript(cliScript, {
      args: ['psql', '-v', 'ON_ERROR_STOP=1', '-c', 'select * from no_such_table'],
      env: { DATABASE_URL: db.url },
    })
    expect(failed.code, failed.output).toBe(1)
    expect(failed.stderr).toContain('relation "no_such_table" does not exist')
  })

  it('says how to install psql when it is not on PATH, and prints the URL with its password redacted', async () => {
    const out: string[] = []
    const err: string[] = []
    const code = await main(['psql'], {
      env: { DATABASE_URL: withPassword(), PATH: noPsqlPath },
      stdout: (s) => out.push(s),
      stderr: (s) => err.push(s),
    })
    expect(code).toBe(2)
    const text = err.join('\n')
    expect(text).toContain('psql is not installed (not on PATH)')
    expect(text).toContain('sudo apt-get install postgresql-client')
    const u = new URL(db.url)
    expect(text).toContain(`The database: postgres://${u.username}:***@${u.host}${u.pathname}`)
    expect(text).not.toContain('not-a-real-secret')
  })

  it.skipIf(!hasPsql)(
    'opens psql on the embedded database when DATABASE_URL is unset, starting it as commands do',
    async () => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'psql-embedded-'))
      try {
        const result = await runScript(cliScript, {
          args: ['psql', '-At', '-c', 'select count(*) from jobs.migrations'],
          env: { ADMIN_JOBS_DATA_DIR: dataDir },
        })
        expect(result.code, result.output).toBe(0)
        expect(Number(result.stdout.trim())).toBeGreaterThan(5)
        expect(result.stderr).toMatch(/psql on the embedded database \(postgres:\/\/\S+@127\.0\.0\.1:\d+\/\S+\)/)
        // Without psql it names the embedded server's URL in full: it is local and the CLI's own.
        const missing = await runScript(cliScript, {
          args: ['psql'],
          env: { ADMIN_JOBS_DATA_DIR: dataDir, PATH: noPsqlPath },
        })
        expect(missing.code, missing.output).toBe(2)
        expect(missing.stderr).toContain('sudo apt-get install postgresql-client')
        expect(missing.stdout).toMatch(/The embedded database: postgres:\/\/[^*\s]+@127\.0\.0\.1:\d+\//)
      } finally {
        fs.rmSync(dataDir, { recursive: true, force: true })
      }
    },
    180_000,
  )
})
