import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type ParsedMail, simpleParser } from 'mailparser'
import { SMTPServer } from 'smtp-server'

/** A real SMTP server on loopback that parses every message it receives. */
export interface SmtpCapture {
  url: string
  messages: ParsedMail[]
  /** Resolves once at least `count` messages arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<ParsedMail[]>
  close(): Promise<void>
}

/** Starts an SMTP server on 127.0.0.1 (STARTTLS off: the bundled certificate has expired). */
export async function startSmtp(): Promise<SmtpCapture> {
  const messages: ParsedMail[] = []
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, _session, callback) {
      simpleParser(stream).then(
        (mail) => {
          messages.push(mail)
          callback()
        },
        (err) => callback(err),
      )
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.server.address() as AddressInfo
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    async waitFor(count, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs
      while (messages.length < count) {
        if (Date.now() > until) throw new Error(`expected ${count} emails, got ${messages.length}`)
        await new Promise((r) => setTimeout(r, 25))
      }
      return messages
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** One request an HTTP capture server received. */
export interface CapturedRequest {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
  json(): any
}

/** A real HTTP server on loopback that records requests; `handler` decides the response (default 200 "ok"). */
export interface HttpCapture {
  url: string
  port: number
  requests: CapturedRequest[]
  setHandler(handler: (req: CapturedRequest, res: ServerResponse) => void | Promise<void>): void
  waitFor(count: number, timeoutMs?: number): Promise<CapturedRequest[]>
  close(): Promise<void>
}

/** Starts an HTTP server on 127.0.0.1. */
export async function startHttp(
  handler?: (req: CapturedRequest, res: ServerResponse) => void | Promise<void>,
): Promise<HttpCapture> {
  const requests: CapturedRequest[] = []
  let current = handler ?? ((_req: CapturedRequest, res: ServerResponse) => res.end('ok'))
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d) => (body += d))
    req.on('end', () => {
      const captured: CapturedRequest = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        body,
        json: () => JSON.parse(body),
      }
      requests.push(captured)
      Promise.resolve(current(captured, res)).catch(() => {
        res.statusCode = 500
        res.end()
      })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setHandler: (h) => {
      current = h
    },
    async waitFor(count, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs
      while (requests.length < count) {
        if (Date.now() > until) throw new Error(`expected ${count} requests, got ${requests.length}`)
        await new Promise((r) => setTimeout(r, 25))
      }
      return requests
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
