import type { AddressInfo } from 'node:net'
import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runJobScript as runScript } from './support/run.ts'
import { type HttpCapture, startHttp } from './support/servers.ts'

let db: TestDatabase
let monitor: HttpCapture

beforeAll(async () => {
  db = await createTestDatabase('heartbeat')
  monitor = await startHttp()
})
afterAll(() => monitor.close())

/** A port on loopback with nothing listening (connections are refused). */
async function deadPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

describe('heartbeat pings', () => {
  it('pings start and then success for a job that succeeds', async () => {
    monitor.requests.length = 0
    const result = await runScript('scripts/cleanup/sessions.ts', {
      env: { DATABASE_URL: db.url, HEARTBEAT_URL: `${monitor.url}/ping/` },
    })
    expect(result.code, result.output).toBe(0)
    const paths = monitor.requests.map((r) => `${r.method} ${r.url}`)
    expect(paths).toEqual(['POST /ping/cleanup-sessions/start', 'POST /ping/cleanup-sessions'])
  })

  it('pings start and then fail with the error for a job that fails', async () => {
    monitor.requests.length = 0
    const result = await runScript('test/fixtures/scripts/test/fail.ts', {
      env: { DATABASE_URL: db.url, HEARTBEAT_URL: monitor.url },
    })
    expect(result.code, result.output).toBe(1)
    expect(monitor.requests.map((r) => r.url)).toEqual(['/test-fail/start', '/test-fail/fail'])
    expect(monitor.requests[1]!.body).toContain('widget sync failed')
  })

  it('does not ping for a dry run, which is not the scheduled work', async () => {
    monitor.requests.length = 0
    const result = await runScript('scripts/cleanup/sessions.ts', {
      args: ['--dry-run'],
      env: { DATABASE_URL: db.url, HEARTBEAT_URL: monitor.url },
    })
    expect(result.code, result.output).toBe(0)
    expect(monitor.requests).toEqual([])
  })

  it('still succeeds, with a warning, when nothing listens at HEARTBEAT_URL', async () => {
    const port = await deadPort()
    const result = await runScript('scripts/cleanup/sessions.ts', {
      env: { DATABASE_URL: db.url, HEARTBEAT_URL: `http://127.0.0.1:${port}` },
    })
    expect(result.code, result.output).toBe(0)
    expect(result.output).toContain('heartbeat ping failed')
    const [run] = await db.sql`select status from jobs.runs where job = 'cleanup/sessions' order by id desc limit 1`
    expect(run!.status).toBe('succeeded')
  })

  it('does not hold a job longer than the ping timeout when the monitor never answers', async () => {
    const hanging = await startHttp(() => {
      // never responds
    })
    try {
      const started = Date.now()
      const result = await runScript('scripts/cleanup/sessions.ts', {
        env: { DATABASE_URL: db.url, HEARTBEAT_URL: hanging.url },
      })
      expect(result.code, result.output).toBe(0)
      // One attempt each for start and success: a timeout is not retried.
      expect(hanging.requests.map((r) => r.url)).toEqual(['/cleanup-sessions/start', '/cleanup-sessions'])
      expect(Date.now() - started).toBeGreaterThan(2500)
      expect(Date.now() - started).toBeLessThan(30_000)
      expect(result.output.match(/heartbeat ping failed .*no answer within 3000ms/g)).toHaveLength(2)
    } finally {
      await hanging.close()
    }
  })

  it('pings success with the reason for a paused run, so a dead-man switch sees the schedule is alive', async () => {
    await db.sql`insert into jobs.pauses (target, reason, paused_until) values ('cleanup/sessions', 'db upgrade', now() + interval '1 hour')`
    try {
      monitor.requests.length = 0
      const result = await runScript('scripts/cleanup/sessions.ts', {
        env: { DATABASE_URL: db.url, HEARTBEAT_URL: monitor.url },
      })
      expect(result.code, result.output).toBe(0)
      expect(monitor.requests.map((r) => r.url)).toEqual(['/cleanup-sessions'])
      expect(monitor.requests[0]!.body).toContain('db upgrade')
    } finally {
      await db.sql`update jobs.pauses set resumed_at = now() where resumed_at is null`
    }
  })
})
