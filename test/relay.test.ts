import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Relay, startRelay } from './support/relay.ts'

// The relay under test sits in front of a plain echo server: what it forwards, holds back or breaks is then visible
// byte for byte, without a database in the way.
let echo: net.Server
let echoUrl: string
const relays: Relay[] = []

beforeAll(async () => {
  echo = net.createServer((socket) => {
    socket.on('error', () => {})
    socket.pipe(socket)
  })
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve))
  echoUrl = `tcp://127.0.0.1:${(echo.address() as net.AddressInfo).port}`
})

afterAll(async () => {
  for (const relay of relays) await relay.close()
  await new Promise<void>((resolve) => echo.close(() => resolve()))
})

async function relay(): Promise<Relay> {
  const r = await startRelay(echoUrl)
  relays.push(r)
  return r
}

/** A client connection that collects what it receives and how it ended. */
function dial(port: number) {
  const socket = net.connect(port, '127.0.0.1')
  let received = ''
  let ended: string | undefined
  socket.on('data', (d) => (received += d))
  socket.on('error', (err: NodeJS.ErrnoException) => (ended = err.code ?? err.message))
  socket.on('close', () => (ended ??= 'closed'))
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  connected.catch(() => {})
  return {
    socket,
    connected,
    received: () => received,
    ended: () => ended,
  }
}

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const stop = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > stop) throw new Error('condition not reached in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('the test relay', () => {
  it('forwards both ways and rewrites only the host and port of the URL', async () => {
    const r = await startRelay('postgres://postgres@db.example:6543/admin?sslmode=disable')
    relays.push(r)
    expect(r.url).toBe(`postgres://postgres@127.0.0.1:${r.port}/admin?sslmode=disable`)

    const through = await relay()
    const c = dial(through.port)
    await c.connected
    c.socket.write('hello')
    await until(() => c.received() === 'hello')
    expect(through.open).toBe(1)
    c.socket.destroy()
  })

  it('cut resets both sides of open connections and keeps relaying new ones', async () => {
    const r = await relay()
    const c = dial(r.port)
    await c.connected
    c.socket.write('x')
    await until(() => c.received() === 'x')
    r.cut()
    await until(() => c.ended() !== undefined)
    expect(c.ended()).toBe('ECONNRESET')
    await until(() => r.open === 0)

    const d = dial(r.port)
    await d.connected
    d.socket.write('again')
    await until(() => d.received() === 'again')
    d.socket.destroy()
  })

  it('cut with close ends connections with a FIN instead of a reset', async () => {
    const r = await relay()
    const c = dial(r.port)
    await c.connected
    r.cut('close')
    await until(() => c.ended() !== undefined)
    expect(c.ended()).toBe('closed')
  })

  it('freeze holds traffic back without closing, for old and new connections, and thaw delivers it', async () => {
    const r = await relay()
    const c = dial(r.port)
    await c.connected
    r.freeze()
    c.socket.write('held')
    const late = dial(r.port)
    await late.connected
    late.socket.write('late')
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(c.received()).toBe('')
    expect(late.received()).toBe('')
    expect(c.ended()).toBeUndefined()
    expect(late.ended()).toBeUndefined()

    r.thaw()
    await until(() => c.received() === 'held' && late.received() === 'late')
    c.socket.destroy()
    late.socket.destroy()
  })

  it('refuse resets or refuses new connections, leaves open ones working, and accept restores the relay', async () => {
    const r = await relay()
    const open = dial(r.port)
    await open.connected

    await r.refuse()
    const reset = dial(r.port)
    await until(() => reset.ended() !== undefined)
    expect(reset.ended()).toBe('ECONNRESET')

    await r.refuse('unlisten')
    const refused = dial(r.port)
    await expect(refused.connected).rejects.toMatchObject({ code: 'ECONNREFUSED' })

    open.socket.write('still')
    await until(() => open.received() === 'still')

    await r.accept()
    const back = dial(r.port)
    await back.connected
    back.socket.write('back')
    await until(() => back.received() === 'back')
    open.socket.destroy()
    back.socket.destroy()
  })

  it('close destroys every connection and stops listening', async () => {
    const r = await startRelay(echoUrl)
    const c = dial(r.port)
    await c.connected
    await r.close()
    await until(() => c.ended() !== undefined)
    const after = dial(r.port)
    await expect(after.connected).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })
})
