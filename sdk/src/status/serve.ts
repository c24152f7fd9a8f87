import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { redactUrl } from '../config/redact.ts'
import { renderStatusHtml } from './html.ts'
import type { StatusReport } from './status.ts'

/** Seconds between reloads of the served page (30). */
export const servedRefreshSeconds = 30

/** A live status page: `url` while it serves; `close()` stops accepting and ends open connections. */
export interface StatusServer {
  url: string
  close(): Promise<void>
}

/**
 * Serves the status on 127.0.0.1 (port 0: any free one): `/` the page (reloading itself every
 * `servedRefreshSeconds`), `/status.json` the report as `status --json` prints it. Each request reads the status
 * afresh through `load`; a failed read answers 503 with the reason, and the next request tries again.
 */
export async function serveStatus(
  load: () => Promise<StatusReport>,
  options: { port: number; host?: string; json: (report: StatusReport) => unknown },
): Promise<StatusServer> {
  const server = http.createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end()
      return
    }
    if (path !== '/' && path !== '/index.html' && path !== '/status.json') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try / or /status.json\n')
      return
    }
    try {
      const report = await load()
      const json = path === '/status.json'
      const body = json
        ? `${JSON.stringify(options.json(report), null, 2)}\n`
        : renderStatusHtml(report, { refreshSeconds: servedRefreshSeconds })
      res.writeHead(200, {
        'content-type': json ? 'application/json; charset=utf-8' : 'text/html; charset=utf-8',
        'cache-control': 'no-store',
      })
      res.end(req.method === 'HEAD' ? undefined : body)
    } catch (err) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': String(servedRefreshSeconds) })
      res.end(`the status could not be read: ${redactUrl((err as Error).message)}\n`)
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve())
  })
  const { address, port } = server.address() as AddressInfo
  return {
    url: `http://${address}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
