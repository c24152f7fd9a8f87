import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ConfigError } from '@admin-jobs/sdk'
import { createEnvReader, parseConfig } from '@admin-jobs/sdk/platform'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readBackupSettings } from '#backups'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { fakePgDump, real } from './support/pg-tools.ts'
import { jobEnv, runJobScript, runScript, startScript } from './support/run.ts'

const script = 'scripts/backups/database.ts'
let db: TestDatabase
let scratch: TestDatabase
let dir: string

beforeAll(async () => {
  db = await createTestDatabase('backup_src')
  scratch = await createTestDatabase('backup_verify', { migrate: false })
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aj-backups-'))
  await db.sql`insert into users (id, email, role) select g, 'u' || g || '@example.test', 'user' from generate_series(1, 2000) g`
  await db.sql`insert into sessions (user_id, expires_at) select g % 2000, now() + interval '1 day' from generate_series(1, 5000) g`
  await db.sql`insert into audit_logs (action, metadata) select 'auth.login', jsonb_build_object('n', g) from generate_series(1, 3000) g`
})
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: db.url, BACKUP_DIR: dir, ...extra })
const dumps = () =>
  fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.dump'))
    .sort()

async function runRows(): Promise<number> {
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs.runs where job = 'backups/database'`
  return n
}

async function rowCounts(sql: TestDatabase['sql']) {
  const tables = await sql<{ t: string }[]>`
    select schemaname || '.' || relname as t from pg_stat_user_tables order by 1`
  const counts: Record<string, number> = {}
  for (const { t } of tables) counts[t] = (await sql.unsafe(`select count(*)::int as n from ${t}`))[0]!.n
  return counts
}

describe('backups/database', () => {
  it('writes a custom-format dump with its sha256, restores it into a second database with equal row counts, and records both', async () => {
    // The run's clock is fixed; the earlier dumps are dated before it, so `--verify latest` below means this run's dump.
    const now = '2026-11-28T02:00:00Z'
    // Three earlier dumps of 1 GB: this small dump is less than half their median and must raise the size warning.
    await db.sql`
      insert into jobs.backups (database, file, status, taken_at, size_bytes)
      select ${db.name}, 'old-' || g || '.dump', 'verified', ${now}::timestamptz - g * interval '1 day', 1000000000
      from generate_series(1, 3) g`
    const result = await runJobScript(script, {
      env: env({ BACKUP_VERIFY_DATABASE_URL: scratch.url, ADMIN_JOBS_NOW: now }),
    })
    expect(result.code, result.output).toBe(0)
    expect(dumps()).toEqual([`${db.name}-20261128T020000Z.dump`])
    const file = path.join(dir, dumps()[0]!)
    expect(fs.readFileSync(file).subarray(0, 5).toString()).toBe('PGDMP')
    const digest = createHash('sha256').update(fs.readFileSync(file)).digest('hex')
    expect(fs.readFileSync(`${file}.sha256`, 'utf8')).toBe(`${digest}  ${path.basename(file)}\n`)

    const restored = await rowCounts(scratch.sql)
    expect(restored['public.users']).toBe(2000)
    expect(restored['public.sessions']).toBe(5000)
    expect(restored['public.audit_logs']).toBe(3000)
    const source = await rowCounts(db.sql)
    // The source moved on after the dump (this run's history and alert rows): compare the admin tables.
    for (const table of ['public.users', 'public.sessions', 'public.audit_logs', 'public.licenses', 'jobs.migrations'])
      expect(restored[table], table).toBe(source[table])

    const [backup] = await db.sql`select * from jobs.backups where file = ${path.basename(file)}`
    expect(backup).toMatchObject({ status: 'verified', sha256: digest, size_bytes: String(fs.statSync(file).size) })
    expect(backup!.table_counts['public.users']).toBe(2000)
    const [check] = await db.sql`select * from jobs.backup_verifications where backup_id = ${backup!.id}`
    expect(check).toMatchObject({ status: 'passed', checksum_ok: true, restored: true, mismatches: [] })
    expect(check!.toc_entries).toBeGreaterThan(10)

    const smallDump = `backups/database:small-dump:${db.name}`
    const [warning] = await db.sql`select kind, severity from jobs.messages where incident_key = ${smallDump}`
    expect(warning).toEqual({ kind: 'alert', severity: 'warning' })
    const [incident] = await db.sql`select status, severity from jobs.incidents where key = ${smallDump}`
    expect(incident).toEqual({ status: 'open', severity: 'warning' })
    const [run] = await db.sql`select stats from jobs.runs where job = 'backups/database' order by id desc limit 1`
    expect(run!.stats).toMatchObject({ verification: 'passed', restored: true, small: true, medianBytes: 1000000000 })
  })

  it('fails verification of a dump whose bytes changed, and of a truncated dump whose checksum was rewritten', async () => {
    const file = path.join(dir, dumps().at(-1)!)
    const original = fs.readFileSync(file)
    const flipped = Buffer.from(original)
    flipped[Math.floor(flipped.length * 0.8)]! ^= 0xff
    fs.writeFileSync(file, flipped)
    const corrupt = await runJobScript(script, { args: ['--verify', 'latest'], env: env() })
    expect(corrupt.code, corrupt.output).toBe(1)
    expect(corrupt.output).toContain('checksum mismatch')

    const truncated = original.subarray(0, Math.floor(original.length / 2))
    fs.writeFileSync(file, truncated)
    const sum = createHash('sha256').update(truncated).digest('hex')
    fs.writeFileSync(`${file}.sha256`, `${sum}  ${path.basename(file)}\n`)
    const broken = await runJobScript(script, {
      args: ['--verify', path.basename(file)],
      env: env({ BACKUP_VERIFY_DATABASE_URL: scratch.url }),
    })
    expect(broken.code, broken.output).toBe(1)

    const checks = await db.sql`
      select status, checksum_ok, restored, error from jobs.backup_verifications where file = ${path.basename(file)} order by id`
    expect(checks.map((c) => [c.status, c.checksum_ok, c.restored])).toEqual([
      ['passed', true, true],
      ['failed', false, false],
      ['failed', true, false],
    ])
    expect(checks[2]!.error).toMatch(/pg_restore --list failed|restore failed/)
    const [backup] = await db.sql`select status from jobs.backups where file = ${path.basename(file)}`
    expect(backup!.status).toBe('verification_failed')
    // backups/database is critical: a failed verification alerts.
    const [alert] = await db.sql`
      select severity, title from jobs.messages where incident_key = 'job:backups/database' and kind = 'alert'`
    expect(alert).toMatchObject({ severity: 'critical', title: 'backups/database failed' })
    const [incident] = await db.sql`select status from jobs.incidents where key = 'job:backups/database'`
    expect(incident).toEqual({ status: 'open' })
  })

  it('exits 2 when pg_dump is missing from PATH (no history row) and when pg_dump is older than the server (recorded)', async () => {
    const before = dumps()
    const rows = await runRows()
    const noPath = await runScript(script, { env: env({ PATH: '/nonexistent' }) })
    expect(noPath.code, noPath.output).toBe(2)
    expect(noPath.output).toContain('pg_dump was not found on PATH')

    // Found missing before any connection: no history row.
    expect(await runRows()).toBe(rows)

    const old = path.join(dir, 'old-bin')
    fs.mkdirSync(old, { recursive: true })
    for (const tool of ['pg_dump', 'pg_restore'])
      fs.writeFileSync(path.join(old, tool), `#!/bin/sh\necho "${tool} (PostgreSQL) 9.6.24"\n`, { mode: 0o755 })
    const older = await runScript(script, { env: env({ PG_DUMP: path.join(old, 'pg_dump') }) })
    expect(older.code, older.output).toBe(2)
    expect(older.output).toMatch(/pg_dump 9\.6 \(.*\) is older than the server \(PostgreSQL 1\d/)
    expect(dumps()).toEqual(before)
    // Only the server can say a client is too old: that one is recorded, as a failed run.
    const [run] =
      await db.sql`select status, error from jobs.runs where job = 'backups/database' order by id desc limit 1`
    expect(run!.status).toBe('failed')
    expect(run!.error).toContain('is older than the server')
  })

  it('removes the partial file and records the failure when pg_dump dies half-way through its output', async () => {
    const before = fs.readdirSync(dir).sort()
    const bin = fakePgDump(
      'dying-pg-dump',
      'head -c 3000000 /dev/zero\necho "pg_dump: error: Dumping the contents of table \\"audit_logs\\" failed: connection lost" >&2\nexit 1\n',
    )
    try {
      const result = await runJobScript(script, { env: env({ PG_DUMP: path.join(bin, 'pg_dump') }) })
      expect(result.code, result.output).toBe(1)
      expect(result.output).toContain('failed: connection lost')
      expect(fs.readdirSync(dir).sort()).toEqual(before)
      const [backup] = await db.sql`select status, error from jobs.backups order by id desc limit 1`
      expect(backup!.status).toBe('failed')
      expect(backup!.error).toContain('Dumping the contents of table "audit_logs" failed: connection lost (exit 1)')
    } finally {
      fs.rmSync(bin, { recursive: true, force: true })
    }
  })

  it('stops pg_dump and removes the partial file when SIGTERM arrives mid-dump', async () => {
    const before = fs.readdirSync(dir).sort()
    const pidFile = path.join(os.tmpdir(), `aj-slow-pg-dump-${process.pid}.pid`)
    // Writes 1 MB, says where it is, then takes its time: the job is caught with a partial dump on disk.
    const bin = fakePgDump('slow-pg-dump', `head -c 1000000 /dev/zero\necho $$ > ${pidFile}\nexec sleep 60\n`)
    try {
      const job = startScript(script, { env: env({ PG_DUMP: path.join(bin, 'pg_dump') }) })
      for (let i = 0; i < 300 && !fs.existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50))
      const dumpPid = Number(fs.readFileSync(pidFile, 'utf8'))
      expect(fs.readdirSync(dir).some((f) => f.endsWith('.partial'))).toBe(true)
      job.child.kill('SIGTERM')
      const result = await job.done
      expect(result.code, result.output).toBe(143)
      expect(() => process.kill(dumpPid, 0)).toThrow()
      expect(fs.readdirSync(dir).sort()).toEqual(before)
      const [backup] = await db.sql`select status from jobs.backups order by id desc limit 1`
      expect(backup!.status).toBe('failed')
      const [run] = await db.sql`select status from jobs.runs where job = 'backups/database' order by id desc limit 1`
      expect(run!.status).toBe('cancelled')
    } finally {
      fs.rmSync(bin, { recursive: true, force: true })
      fs.rmSync(pidFile, { force: true })
    }
  })

  it('reports in a dry run what it would write and prune, and writes nothing', async () => {
    const before = fs.readdirSync(dir).sort()
    const [{ n: runs }] = await db.sql`select count(*)::int as n from jobs.backups`
    const result = await runJobScript(script, { args: ['--dry-run'], env: env() })
    expect(result.code, result.output).toBe(0)
    expect(result.output).toContain('dry run: would dump')
    expect(fs.readdirSync(dir).sort()).toEqual(before)
    const [{ n }] = await db.sql`select count(*)::int as n from jobs.backups`
    expect(n).toBe(runs)
  })
  it('refuses every bad setting, flag and tool path while reading the settings, naming what is wrong', () => {
    const aFile = path.join(dir, 'not-a-directory')
    fs.writeFileSync(aFile, '')
    const settings = (extra: Record<string, string>, flags: Record<string, string> = {}) => {
      const e = { ...jobEnv(env(extra)) }
      return () => readBackupSettings(createEnvReader(e), parseConfig(e), flags)
    }
    try {
      const cases: [Record<string, string>, Record<string, string>, RegExp][] = [
        [{ PG_DUMP: '/nowhere/pg_dump' }, {}, /^PG_DUMP points to \/nowhere\/pg_dump/],
        [{ PATH: '/nonexistent' }, {}, /^pg_dump was not found on PATH/],
        [{ PG_RESTORE: '/nowhere/pg_restore' }, {}, /^PG_RESTORE points to \/nowhere\/pg_restore/],
        [{ PG_DUMP: '/bin/true' }, {}, /^PG_DUMP \(\/bin\/true\) does not run as a PostgreSQL client/],
        [{ BACKUP_KEEP_DAILY: '0' }, {}, /^BACKUP_KEEP_DAILY must be at least 1/],
        [{ BACKUP_KEEP_MONTHLY: 'twelve' }, {}, /^BACKUP_KEEP_MONTHLY must be a whole number/],
        [{ BACKUP_COMPRESSION: '11' }, {}, /^BACKUP_COMPRESSION must be at most 9/],
        [{ BACKUP_RESTORE_JOBS: '99' }, {}, /^BACKUP_RESTORE_JOBS must be at most 32/],
        [{ BACKUP_VERIFY_DATABASE_URL: 'mysql://x@h/d' }, {}, /^BACKUP_VERIFY_DATABASE_URL must use postgres/],
        [{ BACKUP_VERIFY_DATABASE_URL: `${db.url}?sslmode=disable` }, {}, /names the admin database itself/],
        [{ BACKUP_VERIFY_DATABASE_URL: `${scratch.url}?search_path=x` }, {}, /parameter "search_path"/],
        [{ DATABASE_URL: `${db.url}?search_path=x` }, {}, /^DATABASE_URL has the parameter "search_path"/],
        [{ BACKUP_DIR: aFile }, {}, /^BACKUP_DIR \(.*\) is not a directory/],
        [{}, { verify: 'missing-20260101T000000Z.dump' }, /^--verify missing-20260101T000000Z\.dump: no such dump/],
      ]
      for (const [extra, flags, message] of cases) {
        expect(settings(extra, flags), JSON.stringify(extra)).toThrow(ConfigError)
        expect(settings(extra, flags)).toThrow(message)
      }
      const good = settings({ BACKUP_VERIFY_DATABASE_URL: scratch.url }, { verify: 'latest' })()
      expect(good.tools.pgDump.path).toBe(real('pg_dump'))
      expect(good.tools.pgRestore.version).toMatch(/^\d+/)
      expect(Object.keys(good.clientEnv).sort()).toEqual(['HOME', 'LANG', 'PATH', 'TZ'])
    } finally {
      fs.rmSync(aFile)
    }
  })

  it('exits 2 on a bad setting with no history row and nothing written', async () => {
    const before = fs.readdirSync(dir).sort()
    const rows = await runRows()
    const [{ n: backups }] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs.backups`
    const cases: { env?: Record<string, string>; args?: string[] }[] = [
      { env: { PG_RESTORE: '/nowhere/pg_restore' } },
      { env: { DATABASE_URL: `${db.url}?search_path=x` } },
      { env: { BACKUP_KEEP_DAILY: '0' } },
      { args: ['--verify', 'missing-20260101T000000Z.dump'] },
    ]
    const results = await Promise.all(cases.map((c) => runScript(script, { args: c.args, env: env(c.env) })))
    for (const result of results) {
      expect(result.code, result.output).toBe(2)
      expect(result.output).toContain('configuration error')
    }
    expect(await runRows()).toBe(rows)
    const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs.backups`
    expect(n).toBe(backups)
    expect(fs.readdirSync(dir).sort()).toEqual(before)
  })

  it('gives pg_dump and pg_restore only PATH, HOME, locale and PG* variables, the password in PGPASSWORD and nothing on their command lines', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'aj-client-env-'))
    // Each stand-in records its environment and arguments, then runs the real tool with the same arguments.
    const record = (tool: string) =>
      `env > ${out}/${tool}.env\nprintf '%s\\n' "$0" "$@" > ${out}/${tool}.args\nexec ${real(tool)} "$@"\n`
    const bin = fakePgDump('env-pg-tools', record('pg_dump'), record('pg_restore'))
    const password = 'Pg-Pa55word-x7'
    const withPassword = (url: string) => {
      const u = new URL(url)
      u.password = password
      return u.toString()
    }
    const secrets = {
      SLACK_WEBHOOK_URL: 'http://127.0.0.1:9/services/T000/B000/slack-secret-1',
      SMTP_URL: 'smtp://mailer:smtp-secret-2@127.0.0.1:9',
      GITHUB_TOKEN: 'ghp_githubsecret3',
      HEARTBEAT_URL: 'http://127.0.0.1:9/heartbeat-secret-4',
      SOME_API_KEY: 'unrelated-secret-5',
      // A stray libpq variable must not send the dump elsewhere.
      PGDATABASE: 'postgres',
      PGHOST: 'elsewhere.invalid',
    }
    try {
      const result = await runJobScript(script, {
        env: env({
          ...secrets,
          DATABASE_URL: withPassword(db.url),
          BACKUP_VERIFY_DATABASE_URL: withPassword(scratch.url),
          PG_DUMP: path.join(bin, 'pg_dump'),
        }),
      })
      expect(result.code, result.output).toBe(0)
      const allowed = new Set([
        ...['PATH', 'HOME', 'LANG', 'TZ'],
        ...['PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE'],
        // Set by the shell that runs the stand-in itself.
        ...['PWD', 'SHLVL', '_', 'OLDPWD'],
      ])
      for (const [tool, database] of [
        ['pg_dump', db.name],
        ['pg_restore', scratch.name],
      ] as const) {
        const text = fs.readFileSync(path.join(out, `${tool}.env`), 'utf8')
        const vars = Object.fromEntries(
          text
            .trim()
            .split('\n')
            .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
        )
        expect(
          Object.keys(vars).filter((k) => !allowed.has(k)),
          tool,
        ).toEqual([])
        expect(vars, tool).toMatchObject({
          PGHOST: new URL(db.url).hostname,
          PGPORT: new URL(db.url).port || '5432',
          PGDATABASE: database,
          PGPASSWORD: password,
        })
        for (const value of Object.values(secrets).filter((v) => v.includes('secret')))
          expect(text, tool).not.toContain(value)
        const args = fs.readFileSync(path.join(out, `${tool}.args`), 'utf8')
        expect(args, tool).not.toContain(password)
        expect(args, tool).not.toMatch(/postgres(ql)?:\/\//)
        expect(args, tool).not.toContain(new URL(db.url).hostname)
      }
      // The restore check really restored through those variables.
      const [run] = await db.sql`select stats from jobs.runs where job = 'backups/database' order by id desc limit 1`
      expect(run!.stats).toMatchObject({ verification: 'passed', restored: true })
    } finally {
      fs.rmSync(bin, { recursive: true, force: true })
      fs.rmSync(out, { recursive: true, force: true })
    }
  })
})
