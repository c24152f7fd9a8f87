import { describe, expect, it } from 'vitest'
import { compareCounts, libpqTarget, majorOf, parseToolVersion, sameDatabase } from '#backups'

describe('backup helpers', () => {
  it('keeps the password off the libpq URI and hands it over in PGPASSWORD', () => {
    const t = libpqTarget('postgres://admin:s%40cret@db.internal:6432/admin_prod?ssl=true')
    expect(t.uri).toBe('postgresql://admin@db.internal:6432/admin_prod?sslmode=require')
    expect(t.uri).not.toContain('cret')
    expect(t.env).toEqual({ PGPASSWORD: 's@cret' })
    expect(t.database).toBe('admin_prod')
    expect(libpqTarget('postgresql://u@h/d?sslmode=verify-full').uri).toBe('postgresql://u@h/d?sslmode=verify-full')
  })

  it('recognises the same database behind different spellings of its URL', () => {
    expect(sameDatabase('postgres://a:x@h:5432/admin', 'postgresql://b@h/admin?sslmode=require')).toBe(true)
    expect(sameDatabase('postgres://a@h/admin', 'postgres://a@h/admin_verify')).toBe(false)
    expect(sameDatabase('postgres://a@h:5433/admin', 'postgres://a@h/admin')).toBe(false)
  })

  it('reads client versions as printed by Debian and upstream builds', () => {
    expect(parseToolVersion('pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n')).toBe('15.20')
    expect(parseToolVersion('pg_restore (PostgreSQL) 17.2\n')).toBe('17.2')
    expect(parseToolVersion('pg_dump (PostgreSQL) 18devel')).toBe('18')
    expect(parseToolVersion('bash: pg_dump: command not found')).toBeUndefined()
    expect(majorOf('9.6')).toBe(9)
    expect(majorOf('16.4')).toBe(16)
  })

  it('reports every table whose restored count differs, and missing tables', () => {
    expect(
      compareCounts(
        { 'public.users': 10, 'public.sessions': 5, 'jobs.runs': 3 },
        { 'public.users': 10, 'public.sessions': 4 },
      ),
    ).toEqual([
      { table: 'public.sessions', expected: 5, actual: 4 },
      { table: 'jobs.runs', expected: 3, actual: null },
    ])
    expect(compareCounts({ 'public.users': 0 }, { 'public.users': 0 })).toEqual([])
  })
})
