import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { type ParsedMail, simpleParser } from 'mailparser'
import { SMTPServer } from 'smtp-server'

/**
 * How a test SMTP server misbehaves: greet only after `delayMs`; take a message's DATA and never answer it; refuse
 * every message with a 5xx at MAIL FROM (default 550); or drop the connection after DATA without an answer.
 */
export type SmtpFault =
  | { kind: 'slow-greeting'; delayMs: number }
  | { kind: 'hang-after-data' }
  | { kind: 'refuse'; code?: number }
  | { kind: 'close-after-data' }

/** A message the SMTP server received: the parsed mail plus the envelope's recipients (RCPT TO), which no header shows. */
export type CapturedMail = ParsedMail & { envelopeTo: string[] }

/** A real SMTP server on loopback that parses every message it accepts. */
export interface SmtpCapture {
  url: string
  /** Messages accepted (answered 250). */
  messages: CapturedMail[]
  /** Messages whose DATA arrived in full, accepted or not: what a client may count as sent once and again. */
  attempts: CapturedMail[]
  /** Resolves once at least `count` messages were accepted. */
  waitFor(count: number, timeoutMs?: number): Promise<CapturedMail[]>
  /** Resolves once at least `count` messages arrived in full (a fault may have kept them from being accepted). */
  waitForAttempts(count: number, timeoutMs?: number): Promise<CapturedMail[]>
  /** Switches the fault on for new commands and connections; undefined behaves again. */
  setFault(fault: SmtpFault | undefined): void
  close(): Promise<void>
}

async function until<T>(items: T[], count: number, timeoutMs: number, what: string): Promise<T[]> {
  const stop = Date.now() + timeoutMs
  while (items.length < count) {
    if (Date.now() > stop) throw new Error(`expected ${count} ${what}, got ${items.length}`)
    await new Promise((r) => setTimeout(r, 25))
  }
  return items
}

/** Starts an SMTP server on 127.0.0.1 (STARTTLS off: the bundled certificate has expired), behaving unless `fault`. */
export async function startSmtp(fault?: SmtpFault): Promise<SmtpCapture> {
  const messages: CapturedMail[] = []
  const attempts: CapturedMail[] = []
  const sockets = new Set<Socket>()
  let current = fault
  const withCode = (message: string, code: number) => Object.assign(new Error(message), { responseCode: code })
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onConnect(_session, callback) {
      if (current?.kind === 'slow-greeting') setTimeout(callback, current.delayMs)
      else callback()
    },
    onMailFrom(_address, _session, callback) {
      if (current?.kind === 'refuse') callback(withCode('mailbox unavailable', current.code ?? 550))
      else callback()
    },
    onData(stream, session, callback) {
      simpleParser(stream).then(
        (parsed) => {
          const mail = Object.assign(parsed, { envelopeTo: session.envelope.rcptTo.map((r) => r.address) })
          attempts.push(mail)
          if (current?.kind === 'hang-after-data') return
          if (current?.kind === 'close-after-data') {
            for (const socket of sockets) if (socket.remotePort === session.remotePort) socket.destroy()
            return
          }
          messages.push(mail)
          callback()
        },
        (err) => callback(err),
      )
    },
  })
  server.server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.server.address() as AddressInfo
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    attempts,
    waitFor: (count, timeoutMs = 10_000) => until(messages, count, timeoutMs, 'emails'),
    waitForAttempts: (count, timeoutMs = 10_000) => until(attempts, count, timeoutMs, 'emails sent'),
    setFault(fault) {
      current = fault
    },
    // Hung conversations are dropped first: the server itself would wait 30 s for them.
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
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

/** What a test HTTP server does with a request it received in full. */
export type HttpHandler = (req: CapturedRequest, res: ServerResponse) => void | Promise<void>

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

/**
 * Handlers for startHttp that misbehave: `hang` never answers (close() ends it), `status` answers with that code
 * (e.g. 500), `close` drops the connection without an answer.
 */
export const httpFaults = {
  hang: (): HttpHandler => () => {},
  status:
    (code: number, body = ''): HttpHandler =>
    (_req, res) => {
      res.statusCode = code
      res.end(body)
    },
  close: (): HttpHandler => (_req, res) => {
    res.socket?.destroy()
  },
}
