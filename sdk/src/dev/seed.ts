import type { Sql } from 'postgres'
import { ConfigError } from '../runtime/errors.ts'
import { type DemoData, generateDemoData } from './demo-data.ts'

/** Options of seedDemo; defaults: seed 1, `now` the current time (whole seconds), 300 users, no `force`. */
export interface SeedOptions {
  seed?: number
  /** The moment the data is built around: 120 days of history before it, expiries after it. */
  now?: Date
  users?: number
  /** Replace the admin tables even when `users` holds rows that are not demo data. */
  force?: boolean
}

/** Rows written per admin table. */
export type SeedCounts = Record<
  'users' | 'sessions' | 'tokens' | 'audit_logs' | 'credentials' | 'licenses' | 'subscriptions',
  number
>

/**
 * Replaces the admin tables (docs/reference.md) with realistic demo data, deterministic for a given seed and `now`: users
 * (owners, admins, some without MFA), ~100 sessions per user, tokens and audit events over 120 days (logins, failures
 * with bursts from a few IPs, role changes, exports, MFA disabled, API keys), credentials, licenses and subscriptions
 * with some expired and some expiring within 1, 7 and 30 days. Refuses non-demo data unless `force`.
 */
export async function seedDemo(sql: Sql, options: SeedOptions = {}): Promise<SeedCounts> {
  const data = generateDemoData({
    seed: options.seed ?? 1,
    now: Math.floor((options.now ?? new Date()).getTime() / 1000) * 1000,
    users: options.users ?? 300,
  })
  await insertDemoData(sql, data, options.force ?? false)
  return Object.fromEntries(Object.entries(data).map(([name, t]) => [name, t.length])) as SeedCounts
}

/** Truncates the admin tables and inserts every generated column as one array, in one transaction. */
async function insertDemoData(sql: Sql, data: DemoData, force: boolean): Promise<void> {
  await sql.begin(async (tx) => {
    // Demo data is recognised by its users' addresses; rows in the other tables without any demo user are real data.
    const [held] = await tx<{ foreign: number; demo: number; others: number }[]>`
      select (select count(*) from users where email not like '%.example')::int as foreign,
        (select count(*) from users where email like '%.example')::int as demo,
        (select count(*) from (
          select 1 from sessions union all select 1 from tokens union all select 1 from audit_logs
          union all select 1 from credentials union all select 1 from licenses union all select 1 from subscriptions
          limit 1) x)::int as others`
    if (!force && held!.foreign > 0)
      throw new ConfigError(
        `refusing to seed: users holds ${held!.foreign} rows that are not demo data (pass --force to replace them)`,
      )
    if (!force && held!.demo === 0 && held!.others > 0)
      throw new ConfigError(
        'refusing to seed: the admin tables hold rows but no demo users, so they are not demo data (pass --force to replace them)',
      )
    await tx`truncate users, sessions, tokens, audit_logs, credentials, licenses, subscriptions restart identity`
    const u = data.users.columns
    await tx`insert into users (id, email, role, mfa_enabled, created_at, last_login_at, disabled_at)
      select * from unnest(${u.id}::int8[], ${u.email}::text[], ${u.role}::text[], ${u.mfa_enabled}::text[]::bool[],
        ${u.created_at}::timestamptz[], ${u.last_login_at}::timestamptz[], ${u.disabled_at}::timestamptz[])`
    const s = data.sessions.columns
    await tx`insert into sessions (id, user_id, created_at, last_seen_at, expires_at, revoked_at, ip, user_agent)
      select * from unnest(${s.id}::uuid[], ${s.user_id}::int8[], ${s.created_at}::timestamptz[],
        ${s.last_seen_at}::timestamptz[], ${s.expires_at}::timestamptz[], ${s.revoked_at}::timestamptz[], ${s.ip}::inet[],
        ${s.user_agent}::text[])`
    const t = data.tokens.columns
    await tx`insert into tokens (id, user_id, kind, token_hash, created_at, expires_at, revoked_at, used_at)
      select * from unnest(${t.id}::uuid[], ${t.user_id}::int8[], ${t.kind}::text[], ${t.token_hash}::text[],
        ${t.created_at}::timestamptz[], ${t.expires_at}::timestamptz[], ${t.revoked_at}::timestamptz[], ${t.used_at}::timestamptz[])`
    const a = data.audit_logs.columns
    await tx`insert into audit_logs (occurred_at, actor_id, action, target_type, target_id, ip, user_agent, metadata)
      select * from unnest(${a.occurred_at}::timestamptz[], ${a.actor_id}::int8[], ${a.action}::text[],
        ${a.target_type}::text[], ${a.target_id}::text[], ${a.ip}::inet[], ${a.user_agent}::text[], ${a.metadata}::jsonb[])`
    const k = data.credentials.columns
    await tx`insert into credentials (id, owner_id, kind, name, created_at, expires_at, revoked_at)
      select * from unnest(${k.id}::int8[], ${k.owner_id}::int8[], ${k.kind}::text[], ${k.name}::text[],
        ${k.created_at}::timestamptz[], ${k.expires_at}::timestamptz[], ${k.revoked_at}::timestamptz[])`
    const l = data.licenses.columns
    await tx`insert into licenses (id, customer, product, seats, seats_used, expires_at, status, contact_email)
      select * from unnest(${l.id}::int8[], ${l.customer}::text[], ${l.product}::text[], ${l.seats}::int4[],
        ${l.seats_used}::int4[], ${l.expires_at}::timestamptz[], ${l.status}::text[], ${l.contact_email}::text[])`
    const b = data.subscriptions.columns
    await tx`insert into subscriptions (id, customer, plan, status, current_period_end, cancel_at_period_end, contact_email)
      select * from unnest(${b.id}::int8[], ${b.customer}::text[], ${b.plan}::text[], ${b.status}::text[],
        ${b.current_period_end}::timestamptz[], ${b.cancel_at_period_end}::text[]::bool[], ${b.contact_email}::text[])`
  })
}
