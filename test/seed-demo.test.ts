import { ConfigError } from '@admin-jobs/sdk'
import { createRandom, type SeedCounts, seedDemo } from '@admin-jobs/sdk/platform'
import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runCli } from './support/run.ts'

const now = new Date('2026-11-28T12:00:00Z')
const tables = ['users', 'sessions', 'tokens', 'audit_logs', 'credentials', 'licenses', 'subscriptions'] as const

let db: TestDatabase
let counts: SeedCounts

beforeAll(async () => {
  db = await createTestDatabase('seed_demo')
  counts = await seedDemo(db.sql, { seed: 7, now })
})

async function checksum(): Promise<string> {
  const parts: string[] = []
  for (const table of tables) {
    const [row] =
      await db.sql`select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) as sum from ${db.sql(table)} t`
    parts.push(`${table}:${row!.sum}`)
  }
  return parts.join(' ')
}

async function one<T = number>(query: Promise<Record<string, unknown>[]>): Promise<T> {
  const [row] = await query
  return Object.values(row!)[0] as T
}

describe('seed-demo', () => {
  it('fills every admin table with the advertised volumes and returns the counts', async () => {
    for (const table of tables) {
      expect(await one(db.sql`select count(*)::int from ${db.sql(table)}`), table).toBe(counts[table])
    }
    expect(counts.users).toBe(300)
    expect(counts.sessions).toBeGreaterThanOrEqual(20_000)
    expect(counts.tokens).toBeGreaterThanOrEqual(10_000)
    expect(counts.audit_logs).toBeGreaterThanOrEqual(30_000)
    expect(counts.credentials).toBeGreaterThan(100)
    expect(counts.licenses).toBeGreaterThan(20)
    expect(counts.subscriptions).toBeGreaterThan(20)
  })

  it('produces users with owners, admins and users, some privileged ones without MFA', async () => {
    const roles = await db.sql`select role, count(*)::int as n, count(*) filter (where not mfa_enabled)::int as no_mfa
      from users group by role`
    const byRole = Object.fromEntries(roles.map((r) => [r.role, r]))
    expect(byRole.owner.n).toBe(2)
    expect(byRole.admin.n).toBeGreaterThan(3)
    expect(byRole.user.n).toBeGreaterThan(200)
    expect(byRole.owner.no_mfa + byRole.admin.no_mfa).toBeGreaterThan(0)
    expect(byRole.admin.n - byRole.admin.no_mfa).toBeGreaterThan(0)
    expect(await one(db.sql`select count(*)::int from users where disabled_at is not null`)).toBeGreaterThan(0)
    expect(await one(db.sql`select count(*)::int from users where email not like '%.example'`)).toBe(0)
  })

  it('spreads sessions, tokens and audit events over 120 days, all in the past', async () => {
    const [span] = await db.sql`
      select min(occurred_at) as first, max(occurred_at) as last, count(distinct occurred_at::date)::int as days
      from audit_logs`
    expect(span!.first.getTime()).toBeGreaterThanOrEqual(now.getTime() - 120 * 86_400_000)
    expect(span!.last.getTime()).toBeLessThanOrEqual(now.getTime())
    expect(span!.days).toBeGreaterThanOrEqual(118)
    expect(await one(db.sql`select count(*)::int from sessions where created_at > ${now}`)).toBe(0)
    // Cleanup jobs find work on both sides of the rule: expired, long-revoked, recently revoked and live sessions.
    const [s] = await db.sql`select
        count(*) filter (where expires_at < ${now})::int as expired,
        count(*) filter (where revoked_at < ${now}::timestamptz - interval '24 hours')::int as long_revoked,
        count(*) filter (where expires_at > ${now} and revoked_at is null)::int as live
      from sessions`
    expect(s).toEqual({ expired: expect.any(Number), long_revoked: expect.any(Number), live: expect.any(Number) })
    expect(Math.min(s!.expired, s!.long_revoked, s!.live)).toBeGreaterThan(100)
    const kinds = await db.sql`select distinct kind from tokens order by kind`
    expect(kinds.map((k) => k.kind)).toEqual(['email_verification', 'invite', 'password_reset', 'refresh'])
  })

  it('records every audit action the jobs read, with the metadata they expect', async () => {
    const actions = await db.sql`select action, count(*)::int as n from audit_logs group by action`
    const byAction = Object.fromEntries(actions.map((a) => [a.action, a.n]))
    for (const action of [
      'auth.login',
      'auth.login_failed',
      'auth.logout',
      'auth.mfa_disabled',
      'user.created',
      'user.role_changed',
      'user.deleted',
      'api_key.created',
      'data.export',
    ]) {
      expect(byAction[action], action).toBeGreaterThan(0)
    }
    expect(
      await one(
        db.sql`select count(*)::int from audit_logs where action = 'auth.login_failed' and metadata->>'email' is null`,
      ),
    ).toBe(0)
    expect(
      await one(
        db.sql`select count(*)::int from audit_logs where action = 'user.role_changed' and not (metadata ? 'from' and metadata ? 'to')`,
      ),
    ).toBe(0)
    expect(
      await one(
        db.sql`select count(*)::int from audit_logs where action = 'data.export' and (metadata->>'rows')::int > 50000`,
      ),
    ).toBeGreaterThan(0)
  })

  it('includes bursts of failed logins from a few IPs, one of them in the last half hour', async () => {
    const bursts = await db.sql`
      select ip::text, count(*)::int as n from audit_logs
      where action = 'auth.login_failed' group by ip order by n desc limit 3`
    expect(bursts[0]!.n).toBeGreaterThan(80)
    const recent = await one(db.sql`
      select max(n)::int from (select count(*) as n from audit_logs where action = 'auth.login_failed'
        and occurred_at > ${now}::timestamptz - interval '30 minutes' group by ip) per_ip`)
    expect(recent).toBeGreaterThanOrEqual(80)
  })

  it('has credentials, licenses and subscriptions both expired and expiring within 1, 7 and 30 days', async () => {
    for (const [table, column] of [
      ['credentials', 'expires_at'],
      ['licenses', 'expires_at'],
      ['subscriptions', 'current_period_end'],
    ] as const) {
      const [row] = await db.sql`select
          count(*) filter (where ${db.sql(column)} < ${now})::int as expired,
          count(*) filter (where ${db.sql(column)} between ${now} and ${now}::timestamptz + interval '1 day')::int as d1,
          count(*) filter (where ${db.sql(column)} between ${now} and ${now}::timestamptz + interval '7 days')::int as d7,
          count(*) filter (where ${db.sql(column)} between ${now} and ${now}::timestamptz + interval '30 days')::int as d30
        from ${db.sql(table)}`
      expect(row!.expired, table).toBeGreaterThan(0)
      expect(row!.d1, table).toBeGreaterThan(0)
      expect(row!.d7, table).toBeGreaterThan(row!.d1)
      expect(row!.d30, table).toBeGreaterThan(row!.d7)
    }
    expect(await one(db.sql`select count(*)::int from licenses where status = 'expired'`)).toBeGreaterThan(0)
    const statuses = await db.sql`select distinct status from subscriptions order by status`
    expect(statuses.map((s) => s.status)).toEqual(['active', 'canceled', 'expired', 'past_due', 'trialing'])
  })

  it('is deterministic: the same seed and time give the same data, another seed different data', async () => {
    await seedDemo(db.sql, { seed: 3, now, users: 40 })
    const first = await checksum()
    await seedDemo(db.sql, { seed: 4, now, users: 40 })
    const other = await checksum()
    await seedDemo(db.sql, { seed: 3, now, users: 40 })
    expect(await checksum()).toBe(first)
    expect(other).not.toBe(first)
  })

  it('refuses to replace tables holding data that is not demo data, unless forced', async () => {
    await db.sql`insert into users (id, email, role) values (100000, 'real.person@company.com', 'admin')`
    await expect(seedDemo(db.sql, { seed: 1, now, users: 20 })).rejects.toBeInstanceOf(ConfigError)
    expect(await one(db.sql`select count(*)::int from users where id = 100000`)).toBe(1)
    await seedDemo(db.sql, { seed: 1, now, users: 20, force: true })
    expect(await one(db.sql`select count(*)::int from users where id = 100000`)).toBe(0)
  })

  it('refuses real rows in the other tables when users is empty, and the CLI takes --force', async () => {
    await db.sql`truncate users, sessions, tokens, audit_logs, credentials, licenses, subscriptions`
    await db.sql`insert into audit_logs (action) values ('auth.login')`
    await expect(seedDemo(db.sql, { seed: 1, now, users: 20 })).rejects.toThrow(/no demo users.*--force/)
    expect(await one(db.sql`select count(*)::int from audit_logs`)).toBe(1)
    const refused = await runCli(['seed-demo'], { env: { DATABASE_URL: db.url } })
    expect(refused.code, refused.output).toBe(2)
    const forced = await runCli(['seed-demo', '--force'], { env: { DATABASE_URL: db.url } })
    expect(forced.code, forced.output).toBe(0)
    expect(await one(db.sql`select count(*)::int from users`)).toBeGreaterThan(100)
  })
})

describe('createRandom', () => {
  it('repeats the same sequence for the same seed and stays within bounds', () => {
    const a = createRandom(42)
    const b = createRandom(42)
    const xs = Array.from({ length: 1000 }, () => a.next())
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b.next()))
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0)
    expect(Math.max(...xs)).toBeLessThan(1)
    expect(new Set(xs).size).toBeGreaterThan(990)
    const ints = Array.from({ length: 1000 }, () => a.int(1, 6))
    expect(new Set(ints)).toEqual(new Set([1, 2, 3, 4, 5, 6]))
    expect(a.uuid()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })
})
