import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { type BenchDatabase, type BenchHelpers, defineBenchCase } from '../harness.ts'

const day = 86_400_000

/** `rows` audit rows evenly over the last 360 days, in time order: 75% are past a 90-day retention. */
async function fill(db: BenchDatabase, rows: number, now: Date) {
  await db.sql`
    insert into audit_logs (occurred_at, actor_id, action, target_type, target_id, ip, user_agent, metadata)
    select ${now}::timestamptz - interval '360 days' + (g::float8 / ${rows}) * interval '360 days', g % 5000,
      (array['auth.login', 'auth.logout', 'auth.login_failed', 'user.created', 'data.export'])[1 + g % 5],
      'user', (g % 100000)::text, ('10.2.' || (g % 250) || '.' || (g % 200))::inet,
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) bench/' || (g % 13),
      jsonb_build_object('email', 'user' || (g % 5000) || '@example.com', 'rows', g % 1000)
    from generate_series(1, ${rows}::int) g`
  await db.sql`vacuum analyze audit_logs`
}

const line = `json_build_object('id', id,
  'occurred_at', to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
  'actor_id', actor_id, 'action', action, 'target_type', target_type, 'target_id', target_id,
  'ip', ip::text, 'user_agent', user_agent, 'metadata', metadata)::text`

/** The baseline: one statement moves the rows, then `COPY … TO STDOUT | gzip -1` writes them (psql and gzip). */
async function baseline(h: BenchHelpers, db: BenchDatabase, cutoff: Date, file: string) {
  const move = await h.time(
    () => db.sql`
      with moved as (delete from audit_logs where occurred_at < ${cutoff}
        returning id, occurred_at, actor_id, action, target_type, target_id, ip, user_agent, metadata)
      insert into jobs.audit_logs_archive (id, occurred_at, actor_id, action, target_type, target_id, ip, user_agent, metadata)
      select * from moved`,
  )
  const copy = await h.time(
    () =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(
          'sh',
          [
            '-c',
            `psql -X -q "$URL" -c "copy (select ${line.replace(/"/g, '\\"')} from jobs.audit_logs_archive order by occurred_at, id) to stdout" | gzip -1 > "$OUT"`,
          ],
          { env: { ...process.env, URL: db.url, OUT: file }, stdio: ['ignore', 'ignore', 'pipe'] },
        )
        let err = ''
        child.stderr.on('data', (d) => (err += d))
        child.once('error', reject)
        child.once('close', (code) =>
          code === 0 && !err ? resolve() : reject(new Error(`psql | gzip failed: ${err}`)),
        )
      }),
  )
  return { ms: move.ms + copy.ms, rows: move.value.count }
}

async function archiveRun(h: BenchHelpers, db: BenchDatabase, now: Date) {
  const dir = await fs.mkdtemp(path.join(tmpdir(), 'bench-archive-'))
  try {
    const run = await h.runJob('scripts/cleanup/audit-logs.ts', {
      db,
      args: ['--max-fraction', '0.8'],
      env: { ADMIN_JOBS_NOW: now.toISOString(), ARCHIVE_DIR: dir, AUDIT_LOG_RETENTION_DAYS: '90' },
    })
    const last = await h.lastRun(db, 'cleanup/audit-logs')
    return { run, stats: last?.stats ?? {} }
  } finally {
    await fs.rm(dir, { recursive: true, force: true })
  }
}

export default defineBenchCase({
  description: 'cleanup/audit-logs: 4M rows, 3M past retention, vs one-statement move + COPY | gzip -1; RSS 1M vs 4M',
  async run(h) {
    const now = new Date()
    const cutoff = new Date(now.getTime() - 90 * day)
    const rows = Number(process.env.BENCH_AUDIT_ROWS ?? 4_000_000)
    const source = await h.createDatabase('audit_src')
    h.log(`generating ${rows.toLocaleString('en-US')} audit rows`)
    await fill(source, rows, now)
    const baseDb = await h.cloneDatabase(source, 'audit_base')
    await h.settle(baseDb, 'audit_logs')
    const out = path.join(tmpdir(), `bench-audit-${process.pid}.ndjson.gz`)
    const base = await baseline(h, baseDb, cutoff, out)
    await fs.rm(out, { force: true })
    await h.settle(source, 'audit_logs')
    const big = await archiveRun(h, source, now)
    if (big.stats.archived !== base.rows)
      throw new Error(`the job archived ${big.stats.archived}, the baseline ${base.rows}`)
    const label = `audit ${rows / 1e6}M/${(base.rows / 1e6).toFixed(2)}M`
    const note = `${big.stats.strategy}, ${big.stats.batches} batches, ${big.stats.files?.length} month files`
    h.report({
      case: label,
      metric: 'archive ms',
      job: big.stats.durationMs,
      baseline: base.ms,
      target: '≤ 1.3×',
      note,
    })
    h.report({
      case: label,
      metric: 'process wall ms',
      job: big.run.wallMs,
      baseline: base.ms,
      note: 'incl. node start-up',
    })
    h.report({ case: label, metric: 'longest tx ms', job: big.stats.longestTransactionMs, target: '≤ 250' })
    h.report({ case: label, metric: 'peak RSS MB', job: big.run.peakRssMb, target: '≤ 200' })

    const small = await h.createDatabase('audit_small')
    h.log(`generating ${(rows / 4).toLocaleString('en-US')} audit rows`)
    await fill(small, rows / 4, now)
    await h.settle(small, 'audit_logs')
    const quarter = await archiveRun(h, small, now)
    h.report({
      case: `audit RSS ${rows / 4e6}M vs ${rows / 1e6}M`,
      metric: 'peak RSS MB',
      job: big.run.peakRssMb,
      baseline: quarter.run.peakRssMb,
      target: '≤ 1.15×',
      note: 'job = 4× rows, baseline = 1× rows',
    })
  },
})
