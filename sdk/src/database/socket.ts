import net from 'node:net'
import { Duplex } from 'node:stream'

/** How the database socket guards against a server or path that goes silent; times in ms, 0 turns a guard off. */
export interface SocketGuards {
  /** Idle time before the kernel's first TCP keepalive probe (later probes follow the system's interval). */
  keepAliveMs: number
  /** Longest wait for any byte from the server while a request is outstanding; then the connection is destroyed. */
  answerTimeoutMs: number
  /** How long a closing connection may wait for the server's goodbye before its socket is destroyed. */
  lingerMs: number
}

/** What the driver hands its socket factory: the target of one connection. */
interface Target {
  host: string[]
  port: number[]
  path?: string | false
}

/** Raised when the server stopped answering; ETIMEDOUT as when the kernel gives up on a dead peer. */
function silentError(ms: number, where: string): Error {
  return Object.assign(
    new Error(`no answer from the database at ${where} for ${Math.round(ms / 1000)}s: connection dropped`),
    { code: 'ETIMEDOUT' },
  )
}

/**
 * A socket for postgres.js that bounds silence. TCP keepalive alone cannot: Node 20 sets only the first probe's delay
 * (interval and count stay the system's, about 11 minutes on Linux), TCP_USER_TIMEOUT is out of reach, and a server
 * that hangs behind a live kernel (a stuck proxy, a frozen VM's hypervisor) ACKs probes forever. So the socket watches
 * the traffic itself: when it has written a request and nothing came back within `answerTimeoutMs`, it destroys the
 * connection and every query on it fails with ETIMEDOUT. The driver runs one request per connection at a time
 * (`max_pipeline: 0`), so "written after the last byte received" means exactly "a request is outstanding". It is a
 * Duplex in front of the TCP socket, not the TCP socket itself, so that this holds over TLS too: the driver's TLS layer
 * then writes its records through it instead of taking over the TCP handle.
 */
export function createGuardedSocket(target: Target, guards: SocketGuards, index: number): Duplex {
  const host = target.host[index % target.host.length]!
  const port = target.port[index % target.port.length]!
  const where = target.path || `${host}:${port}`
  const tcp = target.path ? net.connect(target.path) : net.connect(port, host)
  let lastWrite = 0
  let outstanding = false
  let watchdog: NodeJS.Timeout | undefined
  let linger: NodeJS.Timeout | undefined

  const check = () => {
    watchdog = undefined
    if (!outstanding) return
    const silent = Date.now() - lastWrite
    if (silent >= guards.answerTimeoutMs) socket.destroy(silentError(silent, where))
    else watchdog = setTimeout(check, guards.answerTimeoutMs - silent).unref()
  }

  const socket = new Duplex({
    write(chunk, _encoding, callback) {
      lastWrite = Date.now()
      outstanding = true
      if (guards.answerTimeoutMs > 0 && !watchdog) watchdog = setTimeout(check, guards.answerTimeoutMs).unref()
      tcp.write(chunk, callback)
    },
    read() {
      tcp.resume()
    },
    final(callback) {
      tcp.end(callback)
      // A server that stopped answering never sends its FIN back; do not keep the socket (and the process) waiting.
      if (guards.lingerMs > 0) linger = setTimeout(() => tcp.destroy(), guards.lingerMs).unref()
    },
    destroy(err, callback) {
      clearTimeout(watchdog)
      clearTimeout(linger)
      tcp.destroy()
      callback(err)
    },
  })
  tcp.on('data', (chunk) => {
    outstanding = false
    if (!socket.push(chunk)) tcp.pause()
  })
  tcp.on('end', () => socket.push(null))
  tcp.on('error', (err) => socket.destroy(err))
  tcp.on('close', () => {
    clearTimeout(linger)
    if (!socket.destroyed) socket.destroy()
  })
  tcp.on('connect', () => socket.emit('connect'))
  if (guards.keepAliveMs > 0) tcp.setKeepAlive(true, guards.keepAliveMs)

  // What the driver reads or calls on its socket besides the stream interface.
  return Object.defineProperties(socket, {
    host: { value: target.path ? undefined : host },
    port: { value: target.path ? undefined : port },
    setKeepAlive: { value: (enable?: boolean, delay?: number) => tcp.setKeepAlive(enable, delay) && socket },
    readyState: { get: () => tcp.readyState },
  })
}
