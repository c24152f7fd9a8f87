import fs from 'node:fs'
import net from 'node:net'
import tls from 'node:tls'

// postgres.js 3.4.9 reads `sslmode` from the URL but not as libpq does: `verify-full` checks against Node's public CAs
// only (`sslrootcert` is sent to the server as a setting, which it refuses), checks an IP host against "localhost",
// and `verify-ca` also checks the host. This module gives the URL libpq's meaning and hands postgres.js `ssl` options.

/** The sslmode values libpq knows, weakest first. */
export const sslModes = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const

/** One of libpq's sslmode values. */
export type SslMode = (typeof sslModes)[number]

/** How a URL asks to connect: its sslmode and root certificate, and the URL without them (what postgres.js reads). */
export interface TlsRequest {
  /** The URL without `sslmode`/`sslrootcert` (postgres.js would send an unknown parameter to the server). */
  url: string
  sslmode: SslMode | undefined
  /** A file of PEM CA certificates, or `system` for the public CAs Node trusts. */
  sslrootcert: string | undefined
}

/** Reads `sslmode` and `sslrootcert` from a postgres:// URL; throws naming the parameter when sslmode is unknown. */
export function readTlsRequest(url: string): TlsRequest {
  const u = new URL(url)
  const sslmode = u.searchParams.get('sslmode') ?? undefined
  const sslrootcert = u.searchParams.get('sslrootcert') ?? undefined
  if (sslmode !== undefined && !(sslModes as readonly string[]).includes(sslmode))
    throw new Error(`sslmode=${sslmode} is not one of ${sslModes.join(', ')}`)
  u.searchParams.delete('sslmode')
  u.searchParams.delete('sslrootcert')
  return { url: u.toString(), sslmode: sslmode as SslMode | undefined, sslrootcert }
}

/** Adds `sslrootcert=<file>` to a URL that names none (how PGSSLROOTCERT reaches every pool opened from the URL). */
export function withRootCert(url: string, file: string | undefined): string {
  if (!file) return url
  const u = new URL(url)
  if (!u.searchParams.has('sslrootcert')) u.searchParams.set('sslrootcert', file)
  return u.toString()
}

/** postgres.js's `ssl` option. */
export type SslOption = boolean | 'require' | 'allow' | 'prefer' | 'verify-full' | tls.ConnectionOptions

/**
 * The `ssl` option for a URL's sslmode, as libpq means it: `disable` none; `allow`/`prefer` TLS when offered,
 * unverified; `require` TLS, unverified unless a root certificate is given (then as `verify-ca`); `verify-ca` the
 * chain against `sslrootcert`; `verify-full` the chain and the host name (or IP address) of the URL. Undefined when
 * the URL has no sslmode (postgres.js's default, no TLS). The CA file is read here: a missing file throws.
 */
export function sslOption(request: TlsRequest): SslOption | undefined {
  const { sslmode, sslrootcert } = request
  if (sslmode === undefined) return sslrootcert === 'system' ? verify(request, true) : undefined
  if (sslmode === 'disable') return false
  if (sslmode === 'allow' || sslmode === 'prefer') return sslmode
  if (sslmode === 'require') return sslrootcert ? verify(request, false) : 'require'
  return verify(request, sslmode === 'verify-full')
}

function verify(request: TlsRequest, checkHost: boolean): tls.ConnectionOptions {
  const host = new URL(request.url).hostname.replace(/^\[|\]$/g, '')
  const file = request.sslrootcert
  const options: tls.ConnectionOptions = {
    rejectUnauthorized: true,
    checkServerIdentity: checkHost ? (_name, cert) => tls.checkServerIdentity(host, cert) : () => undefined,
  }
  if (!net.isIP(host)) options.servername = host
  if (file && file !== 'system') {
    try {
      options.ca = fs.readFileSync(file, 'utf8')
    } catch (err) {
      throw new Error(`cannot read the database CA certificate sslrootcert=${file}`, { cause: err })
    }
  }
  return options
}

// Node's codes for a certificate chain or name it would not accept (X.509 verification, host identity).
const certificateCodes = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
])

/** True when `err` (or its cause) is Node refusing the server's certificate. */
export function isCertificateError(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined; e && typeof e === 'object'; e = e.cause as any) {
    if (typeof e.code === 'string' && certificateCodes.has(e.code)) return true
    if (e.cause === e) break
  }
  return false
}

/** The error to report when the server's certificate was refused: what was checked, against what, and what to fix. */
export function certificateRefused(url: string, err: Error): Error {
  const { sslmode, sslrootcert } = readTlsRequest(url)
  const host = new URL(url).hostname
  const against =
    sslrootcert && sslrootcert !== 'system' ? `the CA certificate in ${sslrootcert}` : 'the public CAs Node trusts'
  const code = (err as { code?: string }).code
  return new Error(
    `the database server's TLS certificate was refused (${code}: ${err.message}): sslmode=${sslmode ?? 'require'} checks it against ${against}` +
      `${sslmode === 'verify-full' ? ` and the host name ${host}` : ''}; set sslrootcert (or PGSSLROOTCERT) to the CA that signed the server's certificate`,
    { cause: err },
  )
}
