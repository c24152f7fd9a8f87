import net from 'node:net'

/**
 * A TCP relay between a client under test and a server (usually PostgreSQL), with faults the test switches on:
 * cut the connections, freeze them (silence without a reset), refuse new ones.
 */
export interface Relay {
  /** The target URL with its host and port replaced by the relay's (user, database and query kept). */
  readonly url: string
  readonly port: number
  /** Connections open right now, and accepted since the start. */
  readonly open: number
  readonly accepted: number
  /**
   * Destroys both sides of every open connection: `reset` (default) sends an RST as a dead proxy or a killed backend
   * does; `close` ends them with a FIN. New connections are still relayed.
   */
  cut(how?: 'reset' | 'close'): void
  /**
   * Stops forwarding in both directions without closing anything: the relay stops reading, so each peer sees a
   * connection that is up (its kernel ACKs) but silent. New connections are accepted and frozen too.
   */
  freeze(): void
  /** Forwards again what freeze() held back, for old and new connections. */
  thaw(): void
  /**
   * New connections fail: `reset` (default) accepts and resets them at once (ECONNRESET); `unlisten` stops listening
   * (ECONNREFUSED). Open connections are left alone.
   */
  refuse(how?: 'reset' | 'unlisten'): Promise<void>
  /** Relays new connections again, on the same port. */
  accept(): Promise<void>
  /** Destroys every connection and stops listening. */
  close(): Promise<void>
}

interface Pair {
  client: net.Socket
  upstream: net.Socket
}

/** Starts a relay on 127.0.0.1 (a free port) to the host and port of `targetUrl` (default port 5432). */
export async function startRelay(targetUrl: string): Promise<Relay> {
  const target = new URL(targetUrl)
  const targetHost = target.hostname
  const targetPort = Number(target.port || 5432)
  const pairs = new Set<Pair>()
  let frozen = false
  let refusing: 'reset' | undefined
  let accepted = 0

  // Forwards by hand rather than with pipe(): pipe resumes a paused source on 'drain', which would undo a freeze.
  const forward = (from: net.Socket, to: net.Socket) => {
    from.on('data', (chunk) => {
      if (!to.write(chunk)) from.pause()
    })
    to.on('drain', () => {
      if (!frozen) from.resume()
    })
    from.on('end', () => to.end())
  }

  const onConnection = (client: net.Socket) => {
    accepted++
    if (refusing) {
      client.on('error', () => {})
      client.resetAndDestroy()
      return
    }
    const upstream = net.connect(targetPort, targetHost)
    const pair = { client, upstream }
    pairs.add(pair)
    const drop = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    // Errors are part of the faults being played; each side's failure ends the other side too.
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    forward(client, upstream)
    forward(upstream, client)
    if (frozen) {
      client.pause()
      upstream.pause()
    }
  }

  const server = net.createServer({ pauseOnConnect: false }, onConnection)
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
  // close() stops listening at once; its callback waits for open connections, which refuse('unlisten') keeps.
  const unlisten = () => {
    if (server.listening) server.close()
  }

  await listen(0)
  const port = (server.address() as net.AddressInfo).port
  const via = new URL(targetUrl)
  via.hostname = '127.0.0.1'
  via.port = String(port)

  const destroyAll = (how: 'reset' | 'close') => {
    for (const { client, upstream } of [...pairs]) {
      if (how === 'reset') {
        client.resetAndDestroy()
        upstream.resetAndDestroy()
      } else {
        client.destroy()
        upstream.destroy()
      }
    }
    pairs.clear()
  }

  return {
    url: via.toString(),
    port,
    get open() {
      return pairs.size
    },
    get accepted() {
      return accepted
    },
    cut: (how = 'reset') => destroyAll(how),
    freeze() {
      frozen = true
      for (const { client, upstream } of pairs) {
        client.pause()
        upstream.pause()
      }
    },
    thaw() {
      frozen = false
      for (const { client, upstream } of pairs) {
        client.resume()
        upstream.resume()
      }
    },
    async refuse(how = 'reset') {
      if (how === 'unlisten') {
        refusing = undefined
        unlisten()
      } else {
        refusing = 'reset'
        if (!server.listening) await listen(port)
      }
    },
    async accept() {
      refusing = undefined
      if (!server.listening) await listen(port)
    },
    async close() {
      destroyAll('reset')
      unlisten()
      await new Promise((resolve) => setImmediate(resolve))
    },
  }
}
