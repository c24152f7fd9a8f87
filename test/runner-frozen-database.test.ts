import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { type Relay, startRelay } from './support/relay.ts'
import { runScript, startScript } from './support/run.ts'

const frozen = 'test/fixtures/scripts/test/frozen.ts'

let db: TestDatabase
let relay: Relay

beforeAll(async () => {
  db = await createTestDatabase('frozen_database')
  relay = await startRelay(db.url)
})

afterAll(async () => {
  await relay?.close()
})

describe('a database that stops answering mid-run', () => {
  it.each([
    ['its timeout', undefined, 124],
    ['SIGTERM', 'SIGTERM', 143],
  ] as const)(
    'cannot keep a job past %s plus the stop bound',
    async (_what, signal, code) => {
      relay.thaw()
      const job = startScript(frozen, { env: { DATABASE_URL: relay.url } })
      await job.waitFor('querying')
      relay.freeze()
      const stoppedAt = Date.now()
      if (signal) job.child.kill(signal)
      const result = await job.done
      const tookMs = Date.now() - stoppedAt
      expect(result.code, result.output).toBe(code)
      // The timeout (3 s) when it is the cause, then at most the 15 s stop bound, plus a process's exit.
      expect(tookMs).toBeLessThan((signal ? 0 : 3_000) + 15_000 + 2_000)
      relay.thaw()

      // The next run (straight to the database) finds the frozen run's row: its process is gone, so it closes it.
      const next = await runScript(frozen, { env: { DATABASE_URL: db.url, FIXTURE_SLEEP: '0' } })
      expect(next.code, next.output).toBe(0)
      const [latest, frozenRun] =
        await db.sql`select status from jobs.runs where job = 'test/frozen' order by id desc limit 2`
      expect(frozenRun!.status).not.toBe('running')
      expect(latest!.status).toBe('succeeded')
    },
    60_000,
  )
})
