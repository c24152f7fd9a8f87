import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { type Relay, startRelay } from './support/relay.ts'
import { root, startScript } from './support/run.ts'

// The driver's socket handling under a connection that drops while a reserved connection (a job lock's) is in use,
// and a new connection whose fetch of the array types is cancelled (as a stopped run's statements are). The project
// ships postgres.js with a patch (patches/); without it, the next write on such a connection throws from a timer
// (uncatchable: the process dies) or never settles, and the failed fetch is an unhandled rejection (the process dies).
const probe = 'test/fixtures/probes/reserved-cut.ts'
// The installed package, as both builds resolve it: node's "import" condition loads src/, "require" loads cjs/.
const installed = path.resolve(path.dirname(createRequire(import.meta.url).resolve('postgres')), '../..')
const entries = { esm: path.join(installed, 'src/index.js'), cjs: path.join(installed, 'cjs/src/index.js') }

let relay: Relay
let unpatched: string
let db: TestDatabase

beforeAll(async () => {
  db = await createTestDatabase('connection_loss', { migrate: false })
  relay = await startRelay(db.url)
  // The same package with the project's patch taken off again: the scenario must fail there, or it proves nothing.
  unpatched = fs.mkdtempSync(path.join(os.tmpdir(), 'postgres-unpatched-'))
  fs.cpSync(installed, unpatched, { recursive: true })
  execFileSync('git', ['apply', '-R', path.join(root, 'patches/postgres@3.4.9.patch')], { cwd: unpatched })
})

afterAll(async () => {
  await relay?.close()
  if (unpatched) fs.rmSync(unpatched, { recursive: true, force: true })
})

/** Runs the probe through the relay and cuts the relay while its reserved connection waits on a long statement. */
async function cutMidQuery(entry: string, how: 'reset' | 'close') {
  const running = startScript(probe, { env: { PROBE_DATABASE_URL: relay.url, POSTGRES_ENTRY: entry } })
  await running.waitFor('reserved', 20_000)
  // Let the long statement reach the server before the cut.
  await new Promise((resolve) => setTimeout(resolve, 200))
  relay.cut(how)
  return running.done
}

describe('a reserved connection whose socket is cut mid-query', () => {
  it.each([
    ['esm', 'close', 'CONNECTION_CLOSED'],
    ['esm', 'reset', 'ECONNRESET'],
    ['cjs', 'close', 'CONNECTION_CLOSED'],
  ] as const)(
    'with the %s build and a %s, every query fails with a catchable error and the process goes on',
    async (build, how, inFlight) => {
      const result = await cutMidQuery(entries[build], how)
      expect(result.stderr).not.toContain('TypeError')
      expect(result.stdout.trim().split('\n')).toEqual([
        'reserved',
        `in-flight: ${inFlight}`,
        'next: CONNECTION_CLOSED',
        'again: CONNECTION_CLOSED',
        'survived',
      ])
      expect(result.code).toBe(0)
    },
  )

  it('kills the process with an uncaught TypeError when the driver is not patched', async () => {
    const result = await cutMidQuery(path.join(unpatched, 'src/index.js'), 'close')
    expect(result.stdout).toContain('in-flight: CONNECTION_CLOSED')
    expect(result.stdout).not.toContain('next:')
    expect(result.stderr).toContain("TypeError: Cannot read properties of null (reading 'write')")
    expect(result.stderr).toContain('nextWrite')
    expect(result.code).toBe(1)
  })
})

/**
 * Runs the types probe while the test holds pg_type locked, so the new connection's fetch of the array types waits;
 * cancels that fetch (as the runner cancels a stopped job's statements) and lets the probe go on.
 */
async function cancelTypesFetch(entry: string) {
  const blocker = await db.sql.reserve()
  try {
    await blocker`begin`
    await blocker`lock table pg_catalog.pg_type in access exclusive mode`
    const running = startScript('test/fixtures/probes/types-cancel.ts', {
      env: { PROBE_DATABASE_URL: db.url, POSTGRES_ENTRY: entry },
    })
    // The blocker's own statements do not wait on its lock: it watches and cancels.
    let waiting: { pid: number } | undefined
    for (let i = 0; i < 200 && !waiting; i++) {
      // Inside a transaction the activity view is read once, unless its snapshot is cleared.
      await blocker`select pg_stat_clear_snapshot()`
      ;[waiting] = await blocker<{ pid: number }[]>`
        select pid from pg_stat_activity
        where application_name = 'types-probe' and wait_event_type = 'Lock' and query like '%typarray%'`
      if (!waiting) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(waiting, 'the probe waiting on its fetch of the array types').toBeDefined()
    await blocker`select pg_cancel_backend(${waiting!.pid})`
    await blocker`rollback`
    return await running.done
  } finally {
    blocker.release()
  }
}

describe('a new connection whose fetch of the array types is cancelled', () => {
  it('fails the query that was waiting for it with the catchable cancel, and answers the next', async () => {
    const result = await cancelTypesFetch(entries.esm)
    expect(result.stdout.trim().split('\n'), result.stderr).toEqual(['first: 57014', 'next: answered 1', 'survived'])
    expect(result.code).toBe(0)
  })

  it('kills the process with an unhandled rejection when the driver is not patched', async () => {
    const result = await cancelTypesFetch(path.join(unpatched, 'src/index.js'))
    expect(result.stdout).not.toContain('survived')
    expect(result.stderr).toContain('canceling statement due to user request')
    expect(result.code).toBe(1)
  })
})
