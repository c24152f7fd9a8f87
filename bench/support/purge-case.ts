import type { BenchDatabase, BenchHelpers } from '../harness.ts'

/** A table the purge benchmarks fill: sessions or tokens, both removable by expires_at or revoked_at (docs/reference.md). */
export type PurgeTable = 'sessions' | 'tokens'

/**
 * Fills `table` with `rows` rows of which `share` are removable at `now`, spread at random over the heap (the worst
 * case for a heap sweep): a tenth of them revoked 25+ hours ago, the rest expired; some live rows were revoked 23 hours ago.
 */
export async function fillPurgeTable(db: BenchDatabase, table: PurgeTable, rows: number, share: number, now: Date) {
  const { sql } = db
  const cut = Math.round(share * 100_000)
  const removable = sql`abs(hashint4(g)) % 100000 < ${cut}`
  const revoked = sql`abs(hashint4(g + 1)) % 10 = 0`
  const at = sql`${now}::timestamptz`
  const expiresAt = sql`case when ${removable} and not ${revoked}
      then ${at} - interval '1 minute' - (abs(hashint4(g + 7)) % 2000000) * interval '1 second'
      else ${at} + interval '1 minute' + (abs(hashint4(g + 7)) % 2000000) * interval '1 second' end`
  const revokedAt = sql`case when ${removable} and ${revoked} then ${at} - interval '25 hours' - (g % 1000) * interval '1 minute'
      when abs(hashint4(g + 3)) % 50 = 0 then ${at} - interval '23 hours' end`
  if (table === 'sessions') {
    await sql`
      insert into sessions (id, user_id, created_at, last_seen_at, expires_at, revoked_at, ip, user_agent)
      select gen_random_uuid(), 1 + g % 50000, ${at} - interval '40 days' + g * interval '1 second', ${at} - interval '1 day',
        ${expiresAt}, ${revokedAt}, ('10.0.' || (g % 256) || '.' || (g % 200))::inet,
        'Mozilla/5.0 (X11; Linux x86_64) bench/' || (g % 97)
      from generate_series(1, ${rows}::int) g`
  } else {
    await sql`
      insert into tokens (id, user_id, kind, token_hash, created_at, expires_at, revoked_at, used_at)
      select gen_random_uuid(), 1 + g % 50000,
        (array['refresh', 'password_reset', 'email_verification', 'invite'])[1 + g % 4], md5(g::text),
        ${at} - interval '40 days' + g * interval '1 second', ${expiresAt}, ${revokedAt},
        case when g % 7 = 0 then ${at} - interval '2 days' end
      from generate_series(1, ${rows}::int) g`
  }
  await sql`vacuum analyze ${sql(table)}`
}

/** The plain-SQL baseline: one DELETE with the job's own predicate. */
export function singleDelete(db: BenchDatabase, table: PurgeTable, now: Date) {
  const dayAgo = new Date(now.getTime() - 86_400_000)
  return db.sql`delete from ${db.sql(table)} where expires_at < ${now} or revoked_at < ${dayAgo}`
}

/**
 * One purge case: the same data in two databases, one DELETE in one and the job in the other, both after a checkpoint
 * and a warm read. Reports the job's purge time (its stats.durationMs) and its process wall time against the DELETE,
 * and the longest transaction.
 */
export async function runPurgeCase(
  h: BenchHelpers,
  options: { table: PurgeTable; rows: number; share: number; label: string; target: string },
) {
  const { table, rows, share, label } = options
  const now = new Date()
  const source = await h.createDatabase(`${table}_src`)
  h.log(`generating ${rows.toLocaleString('en-US')} ${table}, ${share * 100}% removable`)
  await fillPurgeTable(source, table, rows, share, now)
  const baselineDb = await h.cloneDatabase(source, `${table}_base`)
  const jobDb = source
  await h.settle(baselineDb, table)
  const baseline = await h.time(() => singleDelete(baselineDb, table, now))
  await h.settle(jobDb, table)
  const job = await h.runJob(`scripts/cleanup/${table}.ts`, {
    db: jobDb,
    env: { ADMIN_JOBS_NOW: now.toISOString() },
  })
  const run = await h.lastRun(jobDb, `cleanup/${table}`)
  const stats = run?.stats ?? {}
  const [left] = await jobDb.sql<{ n: number }[]>`select count(*)::int as n from ${jobDb.sql(table)}`
  const [expected] = await baselineDb.sql<{ n: number }[]>`select count(*)::int as n from ${baselineDb.sql(table)}`
  if (left?.n !== expected?.n) throw new Error(`the job left ${left?.n} ${table}, the DELETE left ${expected?.n}`)
  const note = `${stats.strategy}, ${stats.batches} batches, ${baseline.value.count.toLocaleString('en-US')} rows`
  h.report({
    case: label,
    metric: 'purge ms',
    job: stats.durationMs,
    baseline: baseline.ms,
    target: options.target,
    note,
  })
  h.report({
    case: label,
    metric: 'process wall ms',
    job: job.wallMs,
    baseline: baseline.ms,
    peakRssMb: job.peakRssMb,
    note: 'incl. node start-up',
  })
  h.report({ case: label, metric: 'longest tx ms', job: stats.longestTransactionMs, target: '≤ 250' })
}
