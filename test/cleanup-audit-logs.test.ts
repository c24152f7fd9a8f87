import fs from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { gunzipSync } from 'node:zlib'
import { sha256File } from '@admin-jobs/sdk'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCopyTextDecoder, verifyArchiveDir, writeMonthFile } from '#cleanup'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript, startScript } from './support/run.ts'

let db: TestDatabase
const now = '2026-06-15T12:00:00.000Z'
// AUDIT_LOG_RETENTION_DAYS=90 from `now`.
const cutoff = '2026-03-17T12:00:00.000Z'
const tricky = { note: 'quote " backslash \\ newline \n tab \t unicode é ✓ \u0001', nested: { rows: 42 } }

beforeAll(async () => {
  db = await createTestDatabase('audit_logs')
})

const dirs: string[] = []
afterAll(async () => {
  for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true })
})

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(tmpdir(), 'audit-archive-'))
  dirs.push(dir)
  return dir
}

function env(archiveDir: string, extra: Record<string, string> = {}) {
  return { DATABASE_URL: db.url, ADMIN_JOBS_NOW: now, ARCHIVE_DIR: archiveDir, ...extra }
}

/** `rows` rows (40,000: going back 194 days, about 54% past retention) 7 minutes apart, plus rows on the cutoff edge. */
async function seed(rows = 40_000): Promise<{ total: number; past: number }> {
  await db.sql`truncate audit_logs, jobs.audit_logs_archive, jobs.audit_logs_archive_months`
  await db.sql`
    insert into audit_logs (occurred_at, actor_id, action, target_type, target_id, ip, user_agent, metadata)
    select ${now}::timestamptz - g * interval '7 minutes', g % 100,
      (array['auth.login', 'auth.logout', 'user.created', 'data.export'])[1 + g % 4], 'user', (g % 500)::text,
      ('10.1.' || (g % 200) || '.' || (g % 250))::inet, 'agent/' || (g % 7), jsonb_build_object('n', g)
    from generate_series(1, ${rows}::int) g`
  await db.sql`
    insert into audit_logs (occurred_at, action, metadata) values
      (${cutoff}::timestamptz, 'edge.at_cutoff', '{}'),
      (${cutoff}::timestamptz - interval '1 microsecond', 'edge.just_before', '{}'),
      (${cutoff}::timestamptz - interval '10 days', 'tricky', ${db.sql.json(tricky)})`
  const [row] = await db.sql`
    select count(*)::int as total, count(*) filter (where occurred_at < ${cutoff}::timestamptz)::int as past
    from audit_logs`
  return { total: row.total, past: row.past }
}

describe('month files', () => {
  it("hold byte for byte PostgreSQL's json_build_object of each row, whether streamed by COPY or merged through a cursor", async () => {
    const month = '1990-01'
    await db.sql`delete from jobs.audit_logs_archive where occurred_at < '1991-01-01'`
    await db.sql`
      insert into jobs.audit_logs_archive (id, occurred_at, actor_id, action, target_type, target_id, ip, user_agent, metadata)
      values
        (900000001, '1990-01-31 23:59:59.999999+00', 5, 'auth.login', 'user', '42', '10.1.2.3',
          'Mozilla/5.0 "quoted" \\ back \\\\ double', '{"b": 1, "a": [1, 2.50, null, "x"]}'),
        (900000002, '1990-01-01 00:00:00+00', null, E'ctl \x01\x02\x1f \b\f\n\r\t del \x7f', null, null,
          '2001:db8::1/64', null, ${db.sql.json(tricky)}),
        (900000003, '1990-01-15 12:00:00+00', -1, 'ünïcode ✓ 😀 \u2028', E'\\"', '', '192.168.0.0/16', '', '{}')`
    const expected = await db.sql<{ line: string }[]>`
      select json_build_object('id', id,
          'occurred_at', to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
          'actor_id', actor_id, 'action', action, 'target_type', target_type, 'target_id', target_id,
          'ip', ip::text, 'user_agent', user_agent, 'metadata', metadata)::text as line
      from jobs.audit_logs_archive where occurred_at < '1990-02-01' order by occurred_at, id`
    const dir = await tempDir()
    const lines = async () =>
      gunzipSync(await fs.readFile(path.join(dir, 'audit-logs-1990-01.ndjson.gz'))).toString('utf8')
    const copied = await writeMonthFile(db.sql, { archiveDir: dir, month })
    expect(copied.rows).toBe(3)
    expect(await lines()).toBe(expected.map((e) => `${e.line}\n`).join(''))
    // Merged with its own previous file, each row is written once and the bytes do not change.
    const merged = await writeMonthFile(db.sql, { archiveDir: dir, month, previous: [copied.sha256] })
    expect(merged).toMatchObject({ rows: 3, sha256: copied.sha256 })
    await db.sql`delete from jobs.audit_logs_archive where occurred_at < '1991-01-01'`
  })

  it('undo COPY escaping, even an escape split across two chunks, and count the lines', async () => {
    const decoder = createCopyTextDecoder()
    const out: Buffer[] = []
    decoder.stream.on('data', (chunk: Buffer) => out.push(chunk))
    const done = new Promise((resolve, reject) => decoder.stream.on('end', resolve).on('error', reject))
    for (const part of ['{"a" : "x\\', '\\"y"}\n', '{"b" : "\\\\', '\\\\z"}\n{}\n'])
      decoder.stream.write(Buffer.from(part))
    decoder.stream.end()
    await done
    expect(Buffer.concat(out).toString()).toBe('{"a" : "x\\"y"}\n{"b" : "\\\\z"}\n{}\n')
    expect(decoder.lines()).toBe(3)
  })

  it('end a COPY that fails part-way with its error, and leave the pool answering', async () => {
    const copy = await db.sql
      .unsafe("copy (select repeat('x', 200) || 1 / (g - 40000) from generate_series(1, 50000) g) to stdout")
      .readable()
    let bytes = 0
    copy.on('data', (chunk: Buffer) => {
      bytes += chunk.length
    })
    await expect(new Promise((resolve, reject) => copy.on('end', resolve).on('error', reject))).rejects.toThrow(
      /division by zero/,
    )
    expect(bytes).toBeGreaterThan(0)
    const [row] = await db.sql`select 1 as ok`
    expect(row!.ok).toBe(1)
  })
})

async function lastRun() {
  const [run] = await db.sql`select * from jobs.runs where job = 'cleanup/audit-logs' order by id desc limit 1`
  return run
}

/** Every row is in exactly one of the two tables, and nothing else is there. */
async function expectNothingLostOrDoubled(total: number) {
  const [row] = await db.sql`
    select (select count(*)::int from audit_logs) as hot,
           (select count(*)::int from jobs.audit_logs_archive) as archived,
           (select count(*)::int from audit_logs a join jobs.audit_logs_archive b using (id)) as both`
  expect(row.hot + row.archived).toBe(total)
  expect(row.both).toBe(0)
}

/** Each month file holds exactly its month's archived rows, in order, and the manifest verifies. */
async function expectFilesMatchArchive(dir: string) {
  const months = await db.sql`
    select to_char(occurred_at at time zone 'UTC', 'YYYY-MM') as month, count(*)::int as n, array_agg(id order by occurred_at, id)::text[] as ids
    from jobs.audit_logs_archive group by 1 order by 1`
  for (const m of months) {
    const lines = gunzipSync(await fs.readFile(path.join(dir, `audit-logs-${m.month}.ndjson.gz`)))
      .toString()
      .split('\n')
      .filter(Boolean)
    expect(lines.length).toBe(m.n)
    expect(lines.map((l) => String(JSON.parse(l).id))).toEqual(m.ids)
  }
  const verified = await verifyArchiveDir(dir)
  expect(verified.problems).toEqual([])
  expect(verified.checked).toBe(months.length)
  const manifest = JSON.parse(await fs.readFile(path.join(dir, 'audit-logs-manifest.json'), 'utf8'))
  expect(manifest.files.map((f: { month: string; rows: number }) => [f.month, f.rows])).toEqual(
    months.map((m) => [m.month, m.n]),
  )
  expect((await fs.readdir(dir)).filter((n) => n.includes('.tmp-'))).toEqual([])
}

async function hashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const name of (await fs.readdir(dir)).sort()) out[name] = await sha256File(path.join(dir, name))
  return out
}

describe('cleanup/audit-logs', () => {
  it('moves exactly the rows past retention into the archive table and month files whose manifest verifies', async () => {
    const { total, past } = await seed()
    const dir = await tempDir()
    const result = await runScript('scripts/cleanup/audit-logs.ts', { env: env(dir) })
    expect(result.code, result.output).toBe(0)
    const run = await lastRun()
    expect(run.status).toBe('succeeded')
    expect(run.stats.archived).toBe(past)
    expect(run.stats.fileRows).toBe(past)
    await expectNothingLostOrDoubled(total)
    const edges = await db.sql`select action from audit_logs where action like 'edge.%'`
    expect(edges.map((e) => e.action)).toEqual(['edge.at_cutoff'])
    const [{ n: late }] = await db.sql`
      select count(*)::int as n from jobs.audit_logs_archive where occurred_at >= ${cutoff}::timestamptz`
    expect(late).toBe(0)
    await expectFilesMatchArchive(dir)

    const march = gunzipSync(await fs.readFile(path.join(dir, 'audit-logs-2026-03.ndjson.gz'))).toString()
    const line = march.split('\n').find((l) => l.includes('"tricky"'))!
    expect(JSON.parse(line)).toMatchObject({
      action: 'tricky',
      occurred_at: '2026-03-07T12:00:00.000000Z',
      metadata: tricky,
    })
  })

  it('sets aside rows at -infinity or BC, reports them once with their ids, and archives every other row', async () => {
    const { total, past } = await seed()
    const poison = await db.sql<{ id: string }[]>`
      insert into audit_logs (occurred_at, action, metadata) values
        ('-infinity', 'poison.minus_infinity', '{}'),
        ('0044-03-15 12:00:00+00 BC', 'poison.bc', '{}'),
        ('infinity', 'poison.plus_infinity', '{}')
      returning id::text as id`
    const dir = await tempDir()
    const first = await runScript('scripts/cleanup/audit-logs.ts', { env: env(dir) })
    expect(first.code, first.output).toBe(0)
    const run = await lastRun()
    expect(run.stats).toMatchObject({ archived: past, fileRows: past, setAside: 2 })
    expect(first.output).toContain(`set aside 2 audit_logs rows whose occurred_at is -infinity or before year 1`)
    expect(first.output).toContain(`ids ${poison[0]!.id}, ${poison[1]!.id})`)
    // The poison rows stay hot; everything else past retention is in exactly one file.
    const hot = await db.sql`select action from audit_logs where action like 'poison.%' order by id`
    expect(hot.map((r) => r.action)).toEqual(['poison.minus_infinity', 'poison.bc', 'poison.plus_infinity'])
    await expectNothingLostOrDoubled(total + 3)
    await expectFilesMatchArchive(dir)

    const second = await runScript('scripts/cleanup/audit-logs.ts', { env: env(dir) })
    expect(second.code, second.output).toBe(0)
    expect(second.output).not.toContain('set aside 2')
    expect(second.output).toContain('rows still set aside')
    expect((await lastRun()).stats.setAside).toBe(2)
  })

  it('leaves files alone when nothing changed and rebuilds them byte for byte', async () => {
    await seed()
    const dir = await tempDir()
    expect((await runScript('scripts/cleanup/audit-logs.ts', { env: env(dir) })).code).toBe(0)
    const first = await hashes(dir)
    expect(Object.keys(first)).toContain('SHA256SUMS')

    const again = await runScript('scripts/cleanup/audit-logs.ts', { env: env(dir) })
    expect(again.code, again.output).toBe(0)
    expect((await lastRun()).stats).toMatchObject({ archived: 0, files: [] })
    expect(await hashes(dir)).toEqual(first)

    const elsewhere = await tempDir()
    const rebuilt = await runScript('scripts/cleanup/audit-logs.ts', { args: ['--rebuild'], env: env(elsewhere) })
    expect(rebuilt.code, rebuilt.output).toBe(0)
    expect(await hashes(elsewhere)).toEqual(first)
  })

  it('reports exact counts and the oldest and newest rows in a dry run, and changes nothing', async () => {
    const { total, past } = await seed()
    const dir = await tempDir()
    const result = await runScript('scripts/cleanup/audit-logs.ts', { args: ['--dry-run'], env: env(dir) })
    expect(result.code, result.output).toBe(0)
    const run = await lastRun()
    expect(run.stats).toMatchObject({
      archived: 0,
      wouldArchive: past,
      oldest: '2025-12-03T01:20:00.000Z',
      newest: '2026-03-17T11:59:59.999Z',
    })
    expect(Object.values(run.stats.byMonth as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(past)
    const [{ n }] = await db.sql`select count(*)::int as n from audit_logs`
    expect(n).toBe(total)
    expect(await fs.readdir(dir)).toEqual([])
  })

  it('archives a table mostly past retention without operator action, and honours an operator-set share', async () => {
    const { total } = await seed()
    const dir = await tempDir()
    const wide = env(dir, { AUDIT_LOG_RETENTION_DAYS: '30' })
    const capped = await runScript('scripts/cleanup/audit-logs.ts', { env: { ...wide, AUDIT_LOG_MAX_FRACTION: '0.6' } })
    expect(capped.code, capped.output).toBe(1)
    expect(capped.output).toContain('refusing to archive')
    expect(capped.output).toContain('AUDIT_LOG_MAX_FRACTION')
    const [{ n }] = await db.sql`select count(*)::int as n from audit_logs`
    expect(n).toBe(total)
    const allowed = await runScript('scripts/cleanup/audit-logs.ts', { env: wide })
    expect(allowed.code, allowed.output).toBe(0)
    await expectNothingLostOrDoubled(total)
  })

  it('refuses a retention shorter than a week before connecting, naming the setting', async () => {
    const { total } = await seed()
    const dir = await tempDir()
    const result = await runScript('scripts/cleanup/audit-logs.ts', {
      env: env(dir, { AUDIT_LOG_RETENTION_DAYS: '3' }),
    })
    expect(result.code, result.output).toBe(2)
    expect(result.output).toContain('AUDIT_LOG_RETENTION_DAYS=3 would archive audit rows from the last 7 days')
    const [{ n }] = await db.sql`select count(*)::int as n from audit_logs`
    expect(n).toBe(total)
    expect(await fs.readdir(dir)).toEqual([])
  })

  it('loses and doubles nothing when killed with SIGKILL at random points, and the next run completes the archive', async () => {
    // Enough rows that the moves outlast the test's reaction to their first commit, on a loaded machine too.
    const { total, past } = await seed(120_000)
    const dir = await tempDir()
    const slow = env(dir, { AUDIT_LOG_BATCH_MS: '5' })
    let killedMidMove = 0
    const points = [
      'archiving audit logs',
      'archiving audit logs',
      'archiving audit logs',
      'month file written',
      'starting',
    ]
    for (const point of points) {
      const child = startScript('scripts/cleanup/audit-logs.ts', { env: slow })
      await child.waitFor(point).catch(() => {})
      if (point === 'archiving audit logs') {
        // Kill right after the next batch commits (plus a random few ms), so the kill lands inside the move.
        const [{ n: before }] = await db.sql`select count(*)::int as n from jobs.audit_logs_archive`
        for (let i = 0; i < 400; i++) {
          const [{ n }] = await db.sql`select count(*)::int as n from jobs.audit_logs_archive`
          if (n > before) break
          await new Promise((r) => setTimeout(r, 5))
        }
      }
      await new Promise((r) => setTimeout(r, Math.random() * 20))
      child.child.kill('SIGKILL')
      const done = await child.done
      expect(done.signal ?? done.code).not.toBe(1)
      await expectNothingLostOrDoubled(total)
      const [{ n }] = await db.sql`select count(*)::int as n from jobs.audit_logs_archive`
      if (done.signal === 'SIGKILL' && n > 0 && n < past) killedMidMove++
    }
    // The kills must really have landed between batches of a move, or this test proves nothing.
    expect(killedMidMove).toBeGreaterThan(0)
    const final = await runScript('scripts/cleanup/audit-logs.ts', { env: slow })
    expect(final.code, final.output).toBe(0)
    await expectNothingLostOrDoubled(total)
    const [{ n }] = await db.sql`select count(*)::int as n from jobs.audit_logs_archive`
    expect(n).toBe(past)
    await expectFilesMatchArchive(dir)

    const reference = await tempDir()
    expect((await runScript('scripts/cleanup/audit-logs.ts', { args: ['--rebuild'], env: env(reference) })).code).toBe(
      0,
    )
    const built = await hashes(reference)
    const kept = await hashes(dir)
    for (const [name, sha] of Object.entries(built)) expect([name, kept[name]]).toEqual([name, sha])
  })

  it('stops between batches on SIGTERM with status cancelled and exit 143', async () => {
    const { total, past } = await seed()
    const dir = await tempDir()
    const child = startScript('scripts/cleanup/audit-logs.ts', { env: env(dir, { AUDIT_LOG_BATCH_MS: '5' }) })
    await child.waitFor('archiving audit logs')
    child.child.kill('SIGTERM')
    const done = await child.done
    expect(done.code, done.output).toBe(143)
    const run = await lastRun()
    expect(run.status).toBe('cancelled')
    await expectNothingLostOrDoubled(total)
    const rerun = await runScript('scripts/cleanup/audit-logs.ts', { env: env(dir) })
    expect(rerun.code, rerun.output).toBe(0)
    const [{ n }] = await db.sql`select count(*)::int as n from jobs.audit_logs_archive`
    expect(n).toBe(past)
    await expectFilesMatchArchive(dir)
  })
})
