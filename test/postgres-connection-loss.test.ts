import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase } from './support/db.ts'
import { type Relay, startRelay } from './support/relay.ts'
import { root, startScript } from './support/run.ts'

// The driver's socket handling under a connection that drops while a reserved connection (a job lock's) is in use.
// The project ships postgres.js with a patch (patches/); without it, the next write on such a connection throws from a
// timer (uncatchable: the process dies) or never settles.
const probe = 'test/fixtures/probes/reserved-cut.ts'
// The installed package, as both builds resolve it: node's "import" condition loads src/, "require" loads cjs/.
const installed = path.resolve(path.dirname(createRequire(import.meta.url).resolve('postgres')), '../..')
const entries = { esm: path.join(installed, 'src/index.js'), cjs: path.join(installed, 'cjs/src/index.js') }

let relay: Relay
let unpatched: string

beforeAll(async () => {
  const db = await createTestDatabase('connection_loss', { migrate: false })
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
