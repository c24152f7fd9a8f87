import fs from 'node:fs'
import path from 'node:path'
import { connect, parseConfig, readTlsRequest, sslOption, withRootCert } from '@admin-jobs/sdk/platform'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestDatabase, serverUrl, type TestDatabase } from './support/db.ts'
import { jobEnv, runScript } from './support/run.ts'
import { enableServerTls, type ServerTls } from './support/tls.ts'
import { actionsFiles, allSteps, loadActions, runStep } from './support/workflows.ts'

// The public-endpoint recipe of docs/deploy.md, for real: TLS turned on on the test server (a CA made here, a reload,
// no restart), then a job run with DATABASE_URL=…?sslmode=verify-full and the CA file in PGSSLROOTCERT, as the
// setup action writes it from the DATABASE_CA_CERT secret.

let db: TestDatabase
let server: ServerTls | { skip: string }

beforeAll(async () => {
  db = await createTestDatabase('tls')
  server = await enableServerTls(serverUrl())
}, 60_000)
afterAll(async () => {
  if ('restore' in server) await server.restore()
})

const withParams = (url: string, params: Record<string, string>) => {
  const u = new URL(url)
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v)
  return u.toString()
}

/** The server under TLS, or a skip of the calling test (with why) when it could not be reconfigured. */
function tlsServer(skip: (reason: string) => void): ServerTls {
  if ('skip' in server) skip(server.skip)
  return server as ServerTls
}

/** Whether the connection `url` opens (through the SDK's connect) is encrypted, and with which protocol. */
async function sessionTls(url: string): Promise<{ ssl: boolean; version: string | null }> {
  const sql = connect(url, { max: 1 })
  try {
    const [row] = await sql<{ ssl: boolean; version: string | null }[]>`
      select ssl, version from pg_stat_ssl where pid = pg_backend_pid()`
    return row!
  } finally {
    await sql.end({ timeout: 1 })
  }
}

describe('a job against a server with TLS on', () => {
  test('connects with sslmode=verify-full and the CA in PGSSLROOTCERT, runs and records its run', async (ctx) => {
    const { ca } = tlsServer(ctx.skip)
    const url = withParams(db.url, { sslmode: 'verify-full' })
    const run = await runScript('scripts/cleanup/sessions.ts', {
      env: { DATABASE_URL: url, PGSSLROOTCERT: ca.certFile },
    })
    expect(run.code, run.output).toBe(0)
    const [last] = await db.sql<{ job: string; status: string }[]>`
      select job, status from jobs.runs order by id desc limit 1`
    expect(last).toEqual({ job: 'cleanup/sessions', status: 'succeeded' })
    // The same URL and CA through the SDK's connect: the session is encrypted.
    expect(await sessionTls(withRootCert(url, ca.certFile))).toMatchObject({
      ssl: true,
      version: expect.stringMatching(/^TLSv1\.[23]$/),
    })
  })

  test('works with the CA as the setup action writes it from the DATABASE_CA_CERT secret, which it never prints', async (ctx) => {
    const { ca } = tlsServer(ctx.skip)
    const [setup] = loadActions().filter((a) => a.path.endsWith(path.join('setup', 'action.yml')))
    const step = allSteps(setup!.doc).find((s) => s.name === 'Write the database CA certificate')!
    const files = actionsFiles()
    const pem = fs.readFileSync(ca.certFile, 'utf8').trim()
    const written = await runStep(step.run!, jobEnv({ ...files.env, DATABASE_CA_CERT: pem, GITHUB_ACTIONS: 'true' }))
    expect(written.code, written.output).toBe(0)
    expect(written.output).not.toContain('BEGIN CERTIFICATE')
    const exported = fs.readFileSync(files.env.GITHUB_ENV!, 'utf8')
    const file = /^PGSSLROOTCERT=(.+)$/m.exec(exported)?.[1]
    expect(file).toBe(path.join(files.dir, 'database-ca.pem'))
    expect(fs.readFileSync(file!, 'utf8')).toBe(`${pem}\n`)
    expect(fs.statSync(file!).mode & 0o777).toBe(0o600)
    const run = await runScript('scripts/cleanup/sessions.ts', {
      env: { DATABASE_URL: withParams(db.url, { sslmode: 'verify-full' }), PGSSLROOTCERT: file },
    })
    expect(run.code, run.output).toBe(0)
    // Without the secret the step writes and exports nothing.
    const none = actionsFiles()
    expect((await runStep(step.run!, jobEnv({ ...none.env }))).code).toBe(0)
    expect(fs.readFileSync(none.env.GITHUB_ENV!, 'utf8')).toBe('')
  })

  test('takes the CA from sslrootcert= in the URL just as well', async (ctx) => {
    const { ca } = tlsServer(ctx.skip)
    expect(await sessionTls(withParams(db.url, { sslmode: 'verify-full', sslrootcert: ca.certFile }))).toMatchObject({
      ssl: true,
    })
  })

  test('refuses a server whose certificate another CA signed: exit 1, naming the CA it checked against', async (ctx) => {
    const { otherCa } = tlsServer(ctx.skip)
    const url = withParams(db.url, { sslmode: 'verify-full' })
    const run = await runScript('scripts/cleanup/sessions.ts', {
      env: { DATABASE_URL: url, PGSSLROOTCERT: otherCa.certFile },
    })
    expect(run.code, run.output).toBe(1)
    expect(run.output).toContain("cannot open the database: the database server's TLS certificate was refused")
    expect(run.output).toContain(
      `checks it against the CA certificate in ${otherCa.certFile} and the host name 127.0.0.1`,
    )
    expect(run.output).toMatch(
      /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN/,
    )
  })

  test('is a configuration error (exit 2, naming PGSSLROOTCERT) when the CA file is not there', async (ctx) => {
    tlsServer(ctx.skip)
    const run = await runScript('scripts/cleanup/sessions.ts', {
      env: { DATABASE_URL: withParams(db.url, { sslmode: 'verify-full' }), PGSSLROOTCERT: '/nonexistent/ca.pem' },
    })
    expect(run.code, run.output).toBe(2)
    expect(run.output).toContain('PGSSLROOTCERT: the CA certificate file /nonexistent/ca.pem does not exist')
  })

  test('checks the URL’s own host under verify-full: a certificate for localhost alone is refused at 127.0.0.1', async (ctx) => {
    const tls = tlsServer(ctx.skip)
    await tls.serveCertificate(['DNS:localhost'])
    try {
      const at = (mode: string) => withParams(db.url, { sslmode: mode, sslrootcert: tls.ca.certFile })
      await expect(sessionTls(at('verify-full'))).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' })
      // verify-ca checks the chain only, as libpq's does.
      expect(await sessionTls(at('verify-ca'))).toMatchObject({ ssl: true })
    } finally {
      await tls.serveCertificate(['DNS:localhost', 'IP:127.0.0.1'])
    }
  })

  test('leaves clients without TLS working, and encrypts unverified with sslmode=require', async (ctx) => {
    tlsServer(ctx.skip)
    expect(await sessionTls(db.url)).toMatchObject({ ssl: false })
    expect(await sessionTls(withParams(db.url, { sslmode: 'disable' }))).toMatchObject({ ssl: false })
    expect(await sessionTls(withParams(db.url, { sslmode: 'require' }))).toMatchObject({ ssl: true })
  })
})

describe('sslmode and sslrootcert, as libpq reads them', () => {
  const url = 'postgres://u:p@db.example.test:5432/admin'

  test('strip both from the URL postgres.js reads (it would send sslrootcert to the server as a setting)', () => {
    expect(readTlsRequest(`${url}?sslmode=verify-full&sslrootcert=/ca.pem&application_name=x`)).toEqual({
      url: `${url}?application_name=x`,
      sslmode: 'verify-full',
      sslrootcert: '/ca.pem',
    })
    expect(() => readTlsRequest(`${url}?sslmode=verify_full`)).toThrow(/sslmode=verify_full is not one of/)
  })

  test('map each mode to what it checks', () => {
    const option = (query: string) => sslOption(readTlsRequest(`${url}${query}`))
    expect(option('')).toBeUndefined()
    expect(option('?sslmode=disable')).toBe(false)
    expect(option('?sslmode=prefer')).toBe('prefer')
    expect(option('?sslmode=require')).toBe('require')
    const full = option('?sslmode=verify-full&sslrootcert=system') as Record<string, unknown>
    expect(full).toMatchObject({ rejectUnauthorized: true, servername: 'db.example.test' })
    expect(full.ca).toBeUndefined()
    expect(() => option('?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem')).toThrow(/cannot read the database CA/)
  })

  test('PGSSLROOTCERT reaches the URL unless the URL names its own, and DATABASE_URL’s sslmode is checked once', () => {
    expect(withRootCert(`${url}?sslmode=verify-full`, '/run/ca.pem')).toBe(
      `${url}?sslmode=verify-full&sslrootcert=%2Frun%2Fca.pem`,
    )
    expect(withRootCert(`${url}?sslrootcert=/mine.pem`, '/run/ca.pem')).toBe(`${url}?sslrootcert=/mine.pem`)
    expect(() => parseConfig({ DATABASE_URL: `${url}?sslmode=sometimes` })).toThrow(/DATABASE_URL: sslmode=sometimes/)
    expect(() => parseConfig({ DATABASE_URL: `${url}?sslmode=verify-full&sslrootcert=/nonexistent.pem` })).toThrow(
      /DATABASE_URL: the CA certificate file \/nonexistent\.pem does not exist/,
    )
    expect(parseConfig({ DATABASE_URL: url, PGSSLROOTCERT: 'system' }).databaseRootCert).toBe('system')
  })
})
