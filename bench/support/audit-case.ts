import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { BenchDatabase, BenchHelpers } from '../harness.ts'

/** The same JSON line the month files hold, for the baseline's COPY. */
export const lineSql = `json_build_object('id', id,
  'occurred_at', to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
  'actor_id', actor_id, 'action', action, 'target_type', target_type, 'target_id', target_id,
  'ip', ip::text, 'user_agent', user_agent, 'metadata', metadata)::text`

/** The columns of one generated audit row number `g` at `at` (realistic widths: ~250 bytes a row). */
export function rowSql(at: string): string {
  return `${at}, g % 5000,
      (array['auth.login', 'auth.logout', 'auth.login_failed', 'user.created', 'data.export'])[1 + g % 5],
      'user', (g % 100000)::text, ('10.2.' || (g % 250) || '.' || (g % 200))::inet,
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) bench/' || (g % 13),
      jsonb_build_object('email', 'user' || (g % 5000) || '@example.com', 'rows', g % 1000)`
}

/**
 * `rows` audit rows evenly over the 360 days before `now` (75% past a 90-day retention). `order`: `time` appends
 * them in time order, as an append-only table holds them; `random` shuffles the physical order.
 */
export async function fillAudit(db: BenchDatabase, rows: number, now: Date, order: 'time' | 'random') {
  const at = `${"'"}${now.toISOString()}${"'"}::timestamptz - interval '360 days' + (g::float8 / ${rows}) * interval '360 days'`
  await db.sql.unsafe(`
    insert into audit_logs (occurred_at, actor_id, action, target_type, target_id, ip, user_agent, metadata)
    select ${rowSql(at)}
    from generate_series(1, ${rows}::int) g ${order === 'random' ? 'order by random()' : ''}`)
  await db.sql`vacuum analyze audit_logs`
}

/** Runs `psql -c "copy (<query>) to stdout" | gzip -1 > file`: the baseline's export. */
export function copyToGzip(url: string, query: string, file: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn(
      'sh',
      ['-c', `psql -X -q "$URL" -c "copy (${query.replace(/"/g, '\\"')}) to stdout" | gzip -1 > "$OUT"`],
      { env: { ...process.env, URL: url, OUT: file }, stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let err = ''
    child.stderr.on('data', (d) => (err += d))
    child.once('error', reject)
    child.once('close', (code) => (code === 0 && !err ? resolve() : reject(new Error(`psql | gzip failed: ${err}`))))
  })
}

/** Runs cleanup/audit-logs on `db` into a throwaway ARCHIVE_DIR; returns the process figures and the run's stats. */
export async function archiveRun(
  h: BenchHelpers,
  db: BenchDatabase,
  now: Date,
  env: Record<string, string> = {},
): Promise<{ wallMs: number; peakRssMb: number; stats: Record<string, any> }> {
  const dir = await fs.mkdtemp(path.join(tmpdir(), 'bench-archive-'))
  try {
    const run = await h.runJob('scripts/cleanup/audit-logs.ts', {
      db,
      args: ['--max-fraction', '1'],
      env: { ADMIN_JOBS_NOW: now.toISOString(), ARCHIVE_DIR: dir, AUDIT_LOG_RETENTION_DAYS: '90', ...env },
    })
    const last = await h.lastRun(db, 'cleanup/audit-logs')
    return { wallMs: run.wallMs, peakRssMb: run.peakRssMb, stats: last?.stats ?? {} }
  } finally {
    await fs.rm(dir, { recursive: true, force: true })
  }
}

/** A temp file path for a baseline's output. */
export function tempOut(label: string): string {
  return path.join(tmpdir(), `bench-audit-${label}-${process.pid}.ndjson.gz`)
}
