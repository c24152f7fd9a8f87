import { execFileSync } from 'node:child_process'
import { randomBytes, X509Certificate } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { PeerCertificate } from 'node:tls'
import postgres, { type Sql } from 'postgres'

// TLS on the test server, as an operator would turn it on: a CA, a server certificate it signed, `ssl = on` and a
// reload (no restart: clients without TLS keep working). openssl makes the certificates (node:crypto cannot sign
// X.509); the server writes its own copies into its data directory (lo_export, as the server's user).

/** A certificate authority made for a test: its certificate file (what a client trusts) and key. */
export interface TestCa {
  certFile: string
  keyFile: string
}

/** What enableServerTls did: the CA the server's certificate chains to, and how to put the server back. */
export interface ServerTls {
  ca: TestCa
  /** A second CA that signed nothing the server has: a client trusting it must refuse the server. */
  otherCa: TestCa
  /** Serves a new certificate signed by `ca` for these names (`DNS:…`, `IP:…`), and waits until it is served. */
  serveCertificate(names: readonly string[]): Promise<void>
  /** Restores the server's previous TLS settings and reloads. */
  restore(): Promise<void>
}

const settings = ['ssl', 'ssl_cert_file', 'ssl_key_file'] as const

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
}

/** Creates a CA (EC P-256, valid for 2 days) in `dir`. */
export function createCa(dir: string, name: string): TestCa {
  const certFile = path.join(dir, `${name}.crt`)
  const keyFile = path.join(dir, `${name}.key`)
  openssl(dir, [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
    ...['-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=admin-jobs test ${name}`],
    ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
  ])
  return { certFile, keyFile }
}

/** A server certificate and key signed by `ca` for `names` (e.g. `DNS:localhost`, `IP:127.0.0.1`), as PEM text. */
export function signServerCertificate(
  ca: TestCa,
  dir: string,
  names: readonly string[],
): { cert: string; key: string } {
  const base = path.join(dir, `server-${randomBytes(3).toString('hex')}`)
  fs.writeFileSync(`${base}.ext`, `subjectAltName=${names.join(',')}\nextendedKeyUsage=serverAuth\n`)
  openssl(dir, [
    ...['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
    ...['-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', '/CN=admin-jobs test server'],
  ])
  openssl(dir, [
    ...['x509', '-req', '-in', `${base}.csr`, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial'],
    ...['-days', '2', '-out', `${base}.crt`, '-extfile', `${base}.ext`],
  ])
  return { cert: fs.readFileSync(`${base}.crt`, 'utf8'), key: fs.readFileSync(`${base}.key`, 'utf8') }
}

/** Writes `text` to `file` on the server's machine as the server's user (superuser only). */
async function serverWrite(sql: Sql, file: string, text: string): Promise<void> {
  const [{ oid }] = await sql<{ oid: number }[]>`select lo_from_bytea(0, ${Buffer.from(text)}) as oid`
  try {
    await sql`select lo_export(${oid}, ${file})`
  } finally {
    await sql`select lo_unlink(${oid})`
  }
}

/** Waits until a new connection with sslmode=require succeeds (the reload took), or throws after `ms`. */
async function waitForTls(url: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms
  for (;;) {
    const probe = postgres(url, { max: 1, ssl: 'require', onnotice: () => {}, connect_timeout: 5 })
    try {
      await probe`select 1`
      return
    } catch (err) {
      if (Date.now() > until) throw new Error('the server did not start serving TLS after the reload', { cause: err })
      await new Promise((r) => setTimeout(r, 100))
    } finally {
      await probe.end({ timeout: 0 })
    }
  }
}

/**
 * Turns TLS on for the server at `adminUrl` with a certificate for localhost and 127.0.0.1 signed by a new CA.
 * Returns the reason instead when the server cannot be reconfigured from here (not a superuser, no openssl).
 */
export async function enableServerTls(adminUrl: string): Promise<ServerTls | { skip: string }> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} })
  const close = () => sql.end({ timeout: 1 })
  try {
    const [me] = await sql<{ super: boolean }[]>`select rolsuper as super from pg_roles where rolname = current_user`
    if (!me?.super) {
      await close()
      return { skip: 'the test server’s user is not a superuser, so its TLS settings cannot be changed' }
    }
    execFileSync('openssl', ['version'], { stdio: 'ignore' })
  } catch (err) {
    await close()
    return { skip: `the test server cannot be reconfigured here: ${(err as Error).message.split('\n')[0]}` }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aj-tls-'))
  const ca = createCa(dir, 'ca')
  const otherCa = createCa(dir, 'other-ca')
  const before = await sql<{ name: string; setting: string; auto: boolean }[]>`
    select name, setting, coalesce(sourcefile like '%postgresql.auto.conf', false) as auto
    from pg_settings where name in ${sql(settings)}`
  // In the data directory, where a server that restarts before restore() (a crashed test) still finds them.
  const [{ data_directory: dataDir }] = await sql<{ data_directory: string }[]>`show data_directory`
  const served = path.join(dataDir, 'admin-jobs-test-server')
  const serveCertificate = async (names: readonly string[]) => {
    const { cert, key } = signServerCertificate(ca, dir, names)
    await serverWrite(sql, `${served}.crt`, cert)
    await serverWrite(sql, `${served}.key`, key)
    // The server refuses a key others may read; its umask may not have seen to that. (It runs on this machine.)
    fs.chmodSync(`${served}.key`, 0o600)
    await sql.unsafe(`alter system set ssl_cert_file = '${served}.crt'`)
    await sql.unsafe(`alter system set ssl_key_file = '${served}.key'`)
    await sql`alter system set ssl = on`
    await sql`select pg_reload_conf()`
    // The new certificate is served once a TLS client sees it: compare what a handshake returns.
    await waitForTls(adminUrl)
    await waitForCertificate(adminUrl, cert, fs.readFileSync(ca.certFile, 'utf8'))
  }
  try {
    await serveCertificate(['DNS:localhost', 'IP:127.0.0.1'])
  } catch (err) {
    await restoreSettings(sql, before)
    await close()
    return { skip: `TLS could not be turned on for the test server: ${(err as Error).message.split('\n')[0]}` }
  }
  return {
    ca,
    otherCa,
    serveCertificate,
    async restore() {
      await restoreSettings(sql, before)
      await close()
      for (const ext of ['crt', 'key']) fs.rmSync(`${served}.${ext}`, { force: true })
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Puts the TLS settings back as they were (set in postgresql.auto.conf, or not set there at all) and reloads. */
async function restoreSettings(sql: Sql, before: readonly { name: string; setting: string; auto: boolean }[]) {
  for (const s of before) {
    if (s.auto) await sql.unsafe(`alter system set ${s.name} = '${s.setting.replace(/'/g, "''")}'`)
    else await sql.unsafe(`alter system reset ${s.name}`)
  }
  await sql`select pg_reload_conf()`
}

/** Waits until the server presents `certPem` (signed by `caPem`) in a TLS handshake. */
async function waitForCertificate(url: string, certPem: string, caPem: string, ms = 10_000): Promise<void> {
  const want = new X509Certificate(certPem).fingerprint256
  const until = Date.now() + ms
  for (;;) {
    let seen: string | undefined
    const probe = postgres(url, {
      max: 1,
      onnotice: () => {},
      connect_timeout: 5,
      // Node asks checkServerIdentity only about a chain it verified: hence the CA.
      ssl: {
        ca: caPem,
        rejectUnauthorized: false,
        checkServerIdentity: (_host: string, cert: PeerCertificate) => {
          seen = cert.fingerprint256
          return undefined
        },
      },
    })
    await probe`select 1`.catch(() => {})
    await probe.end({ timeout: 0 })
    if (seen === want) return
    if (Date.now() > until) throw new Error('the server still presents its previous certificate after the reload')
    await new Promise((r) => setTimeout(r, 100))
  }
}
