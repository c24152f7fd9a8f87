import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {
  createAlertPolicy,
  createFilePolicyStore,
  createLogger,
  decide,
  observeDatabase,
  outageStateDir,
  type PolicyNotice,
  type PolicyState,
  type PolicyStore,
  parseConfig,
} from '@admin-jobs/sdk/platform'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startHttp } from './support/servers.ts'

const t0 = new Date('2026-03-01T12:00:00Z')
const at = (minutes: number) => new Date(t0.getTime() + minutes * 60_000)
const quiet = createLogger({ scope: 'test', write: () => {} })

/** Feeds observations through `decide` and returns the actions. */
function replay(steps: [minutes: number, ok: boolean, suppressedBy?: string][], rule = {}) {
  let state: PolicyState | undefined
  return steps.map(([minutes, ok, suppressedBy]) => {
    const d = decide('k', state, { ok, error: ok ? undefined : 'boom', suppressedBy }, rule, at(minutes))
    state = d.state
    return d.outageMs === undefined ? d.action : `${d.action} ${d.outageMs / 60_000}m`
  })
}

describe('decide', () => {
  it('alerts on the second consecutive failure, reminds after an hour and recovers once with the outage length', () => {
    expect(
      replay([
        [0, true],
        [5, false],
        [10, false],
        [15, false],
        [69, false],
        [70, false],
        [75, false],
        [130, false],
        [135, true],
        [140, true],
      ]),
    ).toEqual(['none', 'pending', 'alert', 'none', 'none', 'reminder', 'none', 'reminder', 'recovery 130m', 'none'])
  })

  it('sends nothing for a failure streak that ends below the threshold', () => {
    expect(
      replay([
        [0, false],
        [5, true],
        [10, false],
        [15, true],
      ]),
    ).toEqual(['pending', 'none', 'pending', 'none'])
  })

  it('honours a custom threshold and reminder interval', () => {
    expect(
      replay(
        [
          [0, false],
          [1, false],
          [2, false],
          [12, false],
          [22, false],
        ],
        { failuresToAlert: 3, remindEvery: '20m' },
      ),
    ).toEqual(['pending', 'pending', 'alert', 'none', 'reminder'])
  })

  it('suppresses alerts and reminders while a dependency is down and alerts once it is back but the key still fails', () => {
    expect(
      replay([
        [0, false, 'database'],
        [5, false, 'database'],
        [10, false, 'database'],
        [15, false],
        [20, true],
      ]),
    ).toEqual(['pending', 'suppressed', 'suppressed', 'alert', 'recovery 20m'])
  })

  it('sends no recovery for a key that was only ever suppressed', () => {
    expect(
      replay([
        [0, false, 'database'],
        [5, false, 'database'],
        [10, true],
      ]),
    ).toEqual(['pending', 'suppressed', 'none'])
  })
})

let tmp: string

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'aj-policy-'))
})

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true })
})

function recordingPolicy(store: PolicyStore) {
  const sent: { kind: string; input: PolicyNotice }[] = []
  const policy = createAlertPolicy({
    store,
    log: quiet,
    send: async (kind, input) => void sent.push({ kind, input }),
  })
  return { policy, sent }
}

describe.each([['a state file', () => createFilePolicyStore(path.join(tmp, 'state'))]])(
  'the policy on %s',
  (_name, makeStore) => {
    it('sends exactly one alert when ten processes observe the same failure at once', async () => {
      const key = `burst-${Math.random()}`
      const stores = Array.from({ length: 10 }, makeStore)
      const runs = stores.map((store) => recordingPolicy(store))
      const decisions = await Promise.all(
        runs.map(({ policy }) => policy.observe({ key, ok: false, error: 'down', title: 'X is down' }, at(0))),
      )
      expect(decisions.map((d) => d.action).sort()).toEqual(['alert', ...Array(8).fill('none'), 'pending'].sort())
      expect(runs.flatMap((r) => r.sent).map((s) => s.kind)).toEqual(['alert'])
      expect(decisions.map((d) => d.state.failures).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    })

    it('keeps the streak across instances and words the recovery with the outage length', async () => {
      const key = `streak-${Math.random()}`
      const observe = (minutes: number, ok: boolean) => {
        const { policy, sent } = recordingPolicy(makeStore())
        return policy.observe({ key, ok, error: 'down', title: 'X is down' }, at(minutes)).then(() => sent)
      }
      expect(await observe(0, false)).toEqual([])
      expect((await observe(5, false)).map((s) => [s.kind, s.input.title])).toEqual([['alert', 'X is down']])
      expect(await observe(30, false)).toEqual([])
      expect((await observe(65, false)).map((s) => s.kind)).toEqual(['reminder'])
      const [recovery] = await observe(95, true)
      expect(recovery!.kind).toBe('recovery')
      expect(recovery!.input.title).toBe('Resolved: X is down')
      expect(recovery!.input.text).toBe('Back to normal after 1h 35m.')
      expect(await observe(100, true)).toEqual([])
    })

    it('sends an alert or reminder again on the next run when every channel failed', async () => {
      const key = `undelivered-${Math.random()}`
      const store = makeStore()
      let channelsUp = false
      const tried: string[] = []
      const policy = createAlertPolicy({
        store,
        log: quiet,
        send: async (kind) => {
          tried.push(`${kind}${channelsUp ? '' : ' (failed)'}`)
          return channelsUp ? { delivered: ['slack'], failed: [] } : { delivered: [], failed: ['slack'] }
        },
      })
      const observe = (minutes: number) =>
        policy.observe({ key, ok: false, error: 'down', title: 'X is down' }, at(minutes))
      await observe(0)
      await observe(5)
      await observe(10)
      channelsUp = true
      await observe(15)
      await observe(20)
      channelsUp = false
      await observe(80)
      channelsUp = true
      await observe(85)
      expect(tried).toEqual(['alert (failed)', 'alert (failed)', 'alert', 'reminder (failed)', 'reminder'])
    })

    it('writes nothing for a healthy key', async () => {
      const store = makeStore()
      const key = `healthy-${Math.random()}`
      await recordingPolicy(store).policy.observe({ key, ok: true, title: 'X' }, at(0))
      expect(await store.get(key)).toBeUndefined()
    })
  },
)

describe('the policy in a dry run', () => {
  it('decides but neither writes state nor sends', async () => {
    const store = createFilePolicyStore(path.join(tmp, 'dry'))
    const sent: string[] = []
    const policy = createAlertPolicy({
      store,
      log: quiet,
      dryRun: true,
      rule: { failuresToAlert: 1 },
      send: async (kind) => void sent.push(kind),
    })
    const decision = await policy.observe({ key: 'dry', ok: false, title: 'X' }, at(0))
    expect(decision.action).toBe('alert')
    expect(sent).toEqual([])
    expect(await store.get('dry')).toBeUndefined()
  })
})

describe('the database incident (observeDatabase)', () => {
  it('keeps its alert due while Slack refuses it, and sends it once Slack takes it', async () => {
    let up = false
    const hook = await startHttp((_req, res) => {
      res.statusCode = up ? 200 : 503
      res.end(up ? 'ok' : 'unavailable')
    })
    try {
      const config = parseConfig(
        {
          DATABASE_URL: 'postgres://app@127.0.0.1:1/app',
          SLACK_WEBHOOK_URL: `${hook.url}/hook`,
          ADMIN_JOBS_DATA_DIR: path.join(tmp, 'outage-undelivered'),
        },
        tmp,
      )
      const observe = (minutes: number) =>
        observeDatabase({ config, log: quiet, ok: false, error: 'connection refused', now: at(minutes) })
      expect((await observe(0)).action).toBe('pending')
      // Due on the 2nd failure; Slack answers 503 (to every retry), so nobody was told and it stays due.
      expect((await observe(5)).action).toBe('alert')
      const first = hook.requests.length
      expect(first).toBeGreaterThan(0)
      expect((await observe(10)).action).toBe('alert')
      const second = hook.requests.length
      expect(second).toBeGreaterThan(first)
      up = true
      expect((await observe(15)).action).toBe('alert')
      expect(hook.requests).toHaveLength(second + 1)
      expect(hook.requests.at(-1)!.json().text).toMatch(/^:rotating_light: Database unreachable/)
      // Delivered: the next failure within the hour is quiet.
      expect((await observe(20)).action).toBe('none')
      expect(hook.requests).toHaveLength(second + 1)
      expect(outageStateDir(config)).toBe(path.join(tmp, 'outage-undelivered', 'alert-state', '127.0.0.1_1_app'))
    } finally {
      await hook.close()
    }
  })
})
