import { ConfigError } from '@admin-jobs/sdk'
import { describe, expect, it } from 'vitest'
import {
  clientEnv,
  compareCounts,
  conninfoDatabase,
  libpqTarget,
  majorOf,
  parseToolVersion,
  sameDatabase,
} from '#backups'

describe('backup helpers', () => {
  it('hands a libpq client the whole URL in PG* variables, the password in PGPASSWORD, and names no password in its label', () => {
    const t = libpqTarget('postgres://admin:s%40cret@db.internal:6432/admin_prod?ssl=true&application_name=backup')
    expect(t.env).toEqual({
      PGHOST: 'db.internal',
      PGPORT: '6432',
      PGUSER: 'admin',
      PGPASSWORD: 's@cret',
      PGDATABASE: 'admin_prod',
      PGSSLMODE: 'require',
      PGAPPNAME: 'backup',
    })
    expect(t.label).toBe('admin@db.internal:6432/admin_prod')
    expect(t.database).toBe('admin_prod')
    const tls = libpqTarget('postgresql://u@h/d?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem')
    expect(tls.env).toEqual({
      PGHOST: 'h',
      PGPORT: '5432',
      PGUSER: 'u',
      PGDATABASE: 'd',
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: '/etc/ca.pem',
    })
    expect(libpqTarget('postgres://u@[::1]:5433/').env).toMatchObject({
      PGHOST: '::1',
      PGPORT: '5433',
      PGDATABASE: 'u',
    })
  })

  it('refuses a URL parameter pg_dump could not be given, naming the variable', () => {
    expect(() => libpqTarget('postgres://u@h/d?search_path=x', 'BACKUP_VERIFY_DATABASE_URL')).toThrow(ConfigError)
    expect(() => libpqTarget('postgres://u@h/d?search_path=x', 'BACKUP_VERIFY_DATABASE_URL')).toThrow(
      /^BACKUP_VERIFY_DATABASE_URL has the parameter "search_path"/,
    )
    expect(() => libpqTarget('not a url')).toThrow(/^DATABASE_URL is not a URL/)
  })

  it('builds a client environment of the base variables and the target only', () => {
    const base = { PATH: '/usr/bin', HOME: '/home/jobs', LANG: 'C.UTF-8' }
    const env = clientEnv(base, libpqTarget('postgres://u:pw@h:5432/d'))
    expect(Object.keys(env).sort()).toEqual([
      'HOME',
      'LANG',
      'PATH',
      'PGDATABASE',
      'PGHOST',
      'PGPASSWORD',
      'PGPORT',
      'PGUSER',
    ])
    expect(clientEnv(base)).toEqual(base)
  })

  it('recognises the same database behind different spellings of its URL', () => {
    const t = (url: string) => libpqTarget(url)
    expect(sameDatabase(t('postgres://a:x@h:5432/admin'), t('postgresql://b@h/admin?sslmode=require'))).toBe(true)
    expect(sameDatabase(t('postgres://a@localhost/admin'), t('postgres://b@127.0.0.1:5432/admin'))).toBe(true)
    expect(sameDatabase(t('postgres://a@h/admin'), t('postgres://a@h/admin_verify'))).toBe(false)
    expect(sameDatabase(t('postgres://a@h:5433/admin'), t('postgres://a@h/admin'))).toBe(false)
  })

  it('quotes a database name for pg_restore so that an = in it is not read as a connection string', () => {
    expect(conninfoDatabase('admin_verify')).toBe(`dbname='admin_verify'`)
    expect(conninfoDatabase(`a=b'c\\d`)).toBe(`dbname='a=b\\'c\\\\d'`)
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
