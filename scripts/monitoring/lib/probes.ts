import http from 'node:http'
import https from 'node:https'
import type { TLSSocket } from 'node:tls'
import { redactUrl } from '@admin-jobs/sdk'

/** The outcome of one HTTP(S) probe. `ok` means an answer below 400 within the timeout. */
export interface ProbeResult {
  /** The URL with any password redacted (safe to log and store). */
  target: string
  ok: boolean
  status?: number
  latencyMs: number
  error?: string
  /** Error code (ETIMEDOUT, ECONNREFUSED, CERT_HAS_EXPIRED …) when the probe failed before an answer. */
  code?: string
  certExpiresAt?: Date
  /** Days until the served certificate expires, relative to `now` (https only). */
  certDaysLeft?: number
}

/** Options of probeUrl; defaults: 10s timeout, the wall clock, the system CAs (plus NODE_EXTRA_CA_CERTS). */
export interface ProbeOptions {
  timeoutMs?: number
  signal?: AbortSignal
  now?: Date
  /** Trusted CA certificates (PEM) replacing the defaults, for a private CA. */
  ca?: string | Buffer
}

const maxBody = 64 * 1024
const dayMs = 86_400_000

/**
 * Probes one URL with a GET (no redirects followed, fresh connection each time so latency includes connect and TLS).
 * Never throws: failures are results. Certificates are verified (NODE_EXTRA_CA_CERTS adds private CAs).
 */
export function probeUrl(url: string, options: ProbeOptions = {}): Promise<ProbeResult> {
  const timeoutMs = options.timeoutMs ?? 10_000
  const target = redactUrl(url)
  const started = performance.now()
  return new Promise<ProbeResult>((resolve) => {
    let cert: { validTo: Date } | undefined
    let settled = false
    const finish = (result: Omit<ProbeResult, 'target' | 'latencyMs' | 'certExpiresAt' | 'certDaysLeft'>) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      const latencyMs = Math.round((performance.now() - started) * 10) / 10
      const now = (options.now ?? new Date()).getTime()
      resolve({
        target,
        latencyMs,
        ...result,
        ...(cert
          ? {
              certExpiresAt: cert.validTo,
              certDaysLeft: Math.round(((cert.validTo.getTime() - now) / dayMs) * 10) / 10,
            }
          : {}),
      })
    }
    const fail = (code: string, error: string) => {
      finish({ ok: false, code, error })
      req.destroy()
    }
    const transport = url.startsWith('https:') ? https : http
    const req = transport.request(url, {
      method: 'GET',
      agent: false,
      headers: { 'user-agent': 'admin-jobs-health' },
      ...(options.ca ? { ca: options.ca } : {}),
    })
    const timer = setTimeout(() => fail('ETIMEDOUT', `no answer within ${timeoutMs}ms`), timeoutMs)
    const onAbort = () => fail('ABORTED', 'probe aborted')
    if (options.signal?.aborted) onAbort()
    options.signal?.addEventListener('abort', onAbort, { once: true })
    req.on('socket', (socket) => {
      socket.once('secureConnect', () => {
        const peer = (socket as TLSSocket).getPeerCertificate()
        if (peer?.valid_to) cert = { validTo: new Date(peer.valid_to) }
      })
    })
    req.on('response', (res) => {
      let read = 0
      res.on('data', (chunk: Buffer) => {
        read += chunk.length
        // A huge page says nothing more about health; stop reading it.
        if (read > maxBody) res.destroy()
      })
      const done = () => {
        const status = res.statusCode ?? 0
        finish(status < 400 ? { ok: true, status } : { ok: false, status, error: `HTTP ${status}` })
      }
      res.on('end', done)
      res.on('close', done)
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      finish({ ok: false, code: err.code ?? 'EPROBE', error: err.code ? `${err.code}: ${err.message}` : err.message })
    })
    req.end()
  })
}

/** Probes every URL at once: the batch takes about as long as the slowest probe, not the sum. */
export function probeAll(urls: readonly string[], options: ProbeOptions = {}): Promise<ProbeResult[]> {
  return Promise.all(urls.map((url) => probeUrl(url, options)))
}
