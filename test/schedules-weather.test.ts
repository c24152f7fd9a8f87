import type { ServerResponse } from 'node:http'
import {
  createGitHubClient,
  createRandom,
  currentSlots,
  type DispatchClaim,
  type GitHubWorkflow,
  type JobSchedule,
  loadSchedules,
  measureLateness,
  runsBetween,
  slotAt,
} from '@admin-jobs/sdk/platform'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { firstUnansweredClaim, githubLateness, type JobView, judge, keepWorkflowsAlive } from '#monitoring'
import { answer, checkAgainstOpenApi, type GitHubExchange } from './support/github.ts'
import { documentedJobs } from './support/reference.ts'
import { root } from './support/run.ts'
import { type CapturedRequest, type HttpCapture, startHttp } from './support/servers.ts'

// GitHub's weather, modelled on what users of scheduled Actions report: ordinary days 0–40 minutes late, bad days
// 2–6 hours late (two in a row, and one more), 3 % of ticks dropped, and a repository idle for 45 days when the month
// starts (GitHub disables its schedules at 60). Time is simulated; the watchdog's verdicts, the lateness it learns, the
// dispatcher's due slots and the keep-alive are the project's own functions; the watchdog's GitHub calls (keep-alive,
// catch-up dispatches) go to a local server that answers as GitHub's OpenAPI description has it. The runner's slot
// rule (a scheduled or dispatched run of a served slot ends skipped) and its lock are modelled as the runner has them.

const minute = 60_000
const hour = 60 * minute
const day = 24 * hour
const start = new Date('2026-11-02T00:00:00Z').getTime()
const days = 30
const badDays = new Set([8, 9, 20])
const stops = [
  { job: 'backups/database', from: start + 12 * day + 3 * hour, until: Number.POSITIVE_INFINITY },
  { job: 'monitoring/health-check', from: start + 25 * day + 8 * hour, until: start + 25 * day + 20 * hour },
]
const idleSince = start - 45 * day
const watchdogJob = 'monitoring/watchdog'

const schedules = loadSchedules(root).filter((s) => s.cron.length > 0)
const critical = new Map([...documentedJobs().values()].map((d) => [d.id, d.critical]))
const durationOf = (job: string) => (job === 'backups/database' ? 8 * minute : minute)
const stopped = (job: string, t: number) => stops.some((s) => s.job === job && t >= s.from && t < s.until)
const dayOf = (t: number) => Math.floor((t - start) / day)

interface Run {
  trigger: string
  status: 'succeeded' | 'skipped'
  startedAt: Date
  slot: Date | null
}

/** A min-heap of events by time. */
function createQueue<T extends { at: number }>() {
  const items: T[] = []
  const swap = (i: number, j: number) => ([items[i], items[j]] = [items[j]!, items[i]!])
  return {
    push(item: T) {
      items.push(item)
      for (let i = items.length - 1; i > 0; ) {
        const p = (i - 1) >> 1
        if (items[p]!.at <= items[i]!.at) break
        swap(i, p)
        i = p
      }
    },
    pop(): T | undefined {
      const top = items[0]
      const last = items.pop()
      if (items.length && last) {
        items[0] = last
        for (let i = 0; ; ) {
          const l = 2 * i + 1
          const r = l + 1
          let m = i
          if (l < items.length && items[l]!.at < items[m]!.at) m = l
          if (r < items.length && items[r]!.at < items[m]!.at) m = r
          if (m === i) break
          swap(i, m)
          i = m
        }
      }
      return top
    },
  }
}

/** The figures one simulated month yields. */
interface Figures {
  slots: number
  served: number
  duplicates: number
  worstLatenessMs: number
  worstDailyLatenessMs: number
  criticalAlerts: { job: string; at: number; real: boolean }[]
  falseCriticalOrdinary: number
  falseCriticalBad: number
  githubLateWarnings: number
  detectedAfterMs: Record<string, number | undefined>
  catchUps: number
  disabledByIdleness: number
  keepAliveCalls: number
}

/** GitHub as the simulation plays it: workflow states with the idle disable, and dispatches that start a run. */
function createGitHubModel(onDispatch: (job: string, slot: Date | undefined, at: number) => void) {
  const files = new Map(schedules.map((s, i) => [s.workflowFile, { id: i + 1, schedule: s, lastEnable: idleSince }]))
  const disabledAt = (file: string) => files.get(file)!.lastEnable + 60 * day
  const clock = { now: start }
  const state = (file: string) => (clock.now >= disabledAt(file) ? 'disabled_inactivity' : 'active')
  const list = (): GitHubWorkflow[] =>
    [...files].map(([path, w]) => ({ id: w.id, name: w.schedule.job, path, state: state(path) }))
  const exchanges: GitHubExchange[] = []
  let keepAliveCalls = 0
  const handle = (req: CapturedRequest, res: ServerResponse) => {
    const url = new URL(req.url, 'http://x')
    const byId = (id: string) => [...files].find(([, w]) => w.id === Number(id))
    const enable = /^\/repos\/acme\/admin\/actions\/workflows\/(\d+)\/enable$/.exec(url.pathname)
    if (req.method === 'PUT' && enable) {
      byId(enable[1]!)![1].lastEnable = clock.now
      keepAliveCalls++
      return answer(exchanges, req, res, 204)
    }
    const dispatch = /^\/repos\/acme\/admin\/actions\/workflows\/(\d+)\/dispatches$/.exec(url.pathname)
    if (req.method === 'POST' && dispatch) {
      const [file, w] = byId(dispatch[1]!)!
      if (state(file) !== 'active')
        return answer(exchanges, req, res, 422, {
          message: 'Cannot trigger a workflow_dispatch on a disabled workflow',
        })
      const slot = (req.json() as { inputs?: { slot?: string } }).inputs?.slot
      onDispatch(w.schedule.job, slot ? new Date(slot) : undefined, clock.now)
      return answer(exchanges, req, res, 204)
    }
    return answer(exchanges, req, res, 404, { message: 'Not Found' })
  }
  return { clock, list, state, handle, exchanges, keepAliveCalls: () => keepAliveCalls }
}

let server: HttpCapture
let handler: (req: CapturedRequest, res: ServerResponse) => void = () => {}
const allExchanges: GitHubExchange[] = []
beforeAll(async () => {
  server = await startHttp((req, res) => handler(req, res))
})
afterAll(() => server.close())

/** Simulates one month; `dispatcher` adds `pnpm jobs dispatch` beside GitHub's cron. */
async function simulate(options: { dispatcher: boolean; seed: number }): Promise<Figures> {
  const random = createRandom(options.seed)
  const events = createQueue<{ at: number; kind: 'start' | 'tick'; job?: string; trigger?: string; slot?: Date }>()
  const ledger = new Map<string, Run[]>(schedules.map((s) => [s.job, []]))
  const servedBy = new Map<string, number>()
  const executed = new Map<string, number>()
  const runningUntil = new Map<string, number>()
  const lastCron = new Map<string, Date>()
  const intervals = new Map(schedules.map((s) => [s.job, measureLateness(s, [], new Date(start)).intervalMs]))
  const claims = new Map<string, DispatchClaim>()
  const claimsOfJob = new Map<string, DispatchClaim[]>()
  const open = new Map<string, { severity: string; lastAt: number }>()
  const figures: Figures = {
    slots: 0,
    served: 0,
    duplicates: 0,
    worstLatenessMs: 0,
    worstDailyLatenessMs: 0,
    criticalAlerts: [],
    falseCriticalOrdinary: 0,
    falseCriticalBad: 0,
    githubLateWarnings: 0,
    detectedAfterMs: Object.fromEntries(stops.map((s) => [s.job, undefined])),
    catchUps: 0,
    disabledByIdleness: 0,
    keepAliveCalls: 0,
  }
  const model = createGitHubModel((job, slot, at) =>
    events.push({ at: at + (0.5 + random.next() * 2.5) * minute, kind: 'start', job, trigger: 'dispatch', slot }),
  )
  handler = model.handle
  const client = createGitHubClient({ token: 't', repository: 'acme/admin', apiUrl: server.url, paceWrites: false })
  const end = start + days * day
  const key = (job: string, slot: Date) => `${job}@${slot.toISOString()}`

  // GitHub's cron: every tick fires late, or not at all.
  for (const s of schedules) {
    for (const tick of runsBetween(s, new Date(start), new Date(end))) {
      figures.slots++
      if (random.chance(0.03)) continue
      const t = tick.getTime()
      const late = badDays.has(dayOf(t)) ? (2 + random.next() * 4) * hour : random.next() * 40 * minute
      events.push({ at: t + late, kind: 'start', job: s.job, trigger: 'schedule' })
    }
  }
  if (options.dispatcher) {
    const fires = new Set(
      schedules.flatMap((s) => runsBetween(s, new Date(start), new Date(end)).map((d) => d.getTime())),
    )
    for (const t of fires) events.push({ at: t + 5_000, kind: 'tick' })
  }

  const claim = (job: string, slot: Date, by: string, at: number): boolean => {
    const k = key(job, slot)
    if (claims.has(k) || servedBy.has(k) || (runningUntil.get(job) ?? 0) > at) return false
    const c: DispatchClaim = {
      job,
      slot,
      claimedAt: new Date(at),
      claimedBy: by,
      status: 'sent',
      workflow: null,
      error: null,
    }
    claims.set(k, c)
    // Like the watchdog's query: the claims of the last two days.
    claimsOfJob.set(job, [...(claimsOfJob.get(job) ?? []).filter((x) => at - x.claimedAt.getTime() < 2 * day), c])
    return true
  }

  const alert = (k: string, severity: string, at: number, job?: string, quietAfterMs?: number) => {
    const was = open.get(k)
    const fresh = !was || (quietAfterMs !== undefined && at - was.lastAt > quietAfterMs)
    open.set(k, { severity, lastAt: at })
    if (!fresh) return
    if (k === 'github-late') figures.githubLateWarnings++
    if (severity === 'critical' && job) {
      const real = stopped(job, at) || stops.some((s) => s.job === job && at >= s.from && at < s.until + 2 * hour)
      figures.criticalAlerts.push({ job, at, real })
      if (!real) badDays.has(dayOf(at)) ? figures.falseCriticalBad++ : figures.falseCriticalOrdinary++
      const stop = stops.find((s) => s.job === job && at >= s.from)
      // Measured from the first fire time the stopped job missed: a daily job cannot be missed before it is due.
      const missed = stop && runsBetween(schedules.find((s) => s.job === job)!, new Date(stop.from), new Date(at))[0]
      if (real && missed && figures.detectedAfterMs[job] === undefined)
        figures.detectedAfterMs[job] = at - missed.getTime()
    }
  }

  const keptAt: Record<string, string> = {}
  // The lateness a job has learned, worked out again at most hourly (the newest 30 runs): it moves slowly.
  const learned = new Map<string, { at: number; lateness: ReturnType<typeof measureLateness> }>()
  const latenessOf = (s: JobSchedule, at: number) => {
    const cached = learned.get(s.job)
    if (cached && at - cached.at < hour) return cached.lateness
    // The ledger is in time order: its newest 30 runs of the last 14 days are at its end.
    const all = ledger.get(s.job)!
    let first = all.length
    while (first > 0 && all.length - first < 30 && all[first - 1]!.startedAt.getTime() > at - 14 * day) first--
    const runs = all.slice(first)
    const lateness = measureLateness(s, runs, new Date(at), { intervalMs: intervals.get(s.job) })
    learned.set(s.job, { at, lateness })
    return lateness
  }
  const watchdogPass = async (at: number) => {
    const now = new Date(at)
    const views: JobView[] = schedules
      .filter((s) => s.job !== watchdogJob)
      .map((s) => {
        const runs = ledger.get(s.job)!
        return {
          job: s.job,
          schedule: s,
          critical: critical.get(s.job) === true,
          lastStart: runs.at(-1)?.startedAt,
          lastCronStart: lastCron.get(s.job),
          watchFrom: new Date(start),
          lateness: latenessOf(s, at),
          claim: firstUnansweredClaim(claimsOfJob.get(s.job) ?? [], runs.at(-1)?.startedAt),
        }
      })
    const late = githubLateness(views, now)
    if (late) alert('github-late', 'warning', at, undefined, 6 * hour)
    const rules = { dispatchStartMs: 15 * minute, hardBoundMs: 12 * hour, canDispatch: true }
    for (const v of views) {
      const verdict = judge(v, now, rules, { githubLate: late !== undefined })
      if (verdict.kind === 'stopped') alert(`stopped:${v.job}`, v.critical ? 'critical' : 'warning', at, v.job)
      else if (verdict.kind === 'on-time') open.delete(`stopped:${v.job}`)
      if (verdict.kind === 'late' && verdict.action === 'catch-up') {
        const slot = slotAt(v.schedule, now)!
        if (model.state(v.schedule.workflowFile) === 'active' && claim(v.job, slot, 'watchdog', at)) {
          figures.catchUps++
          const id = model.list().find((w) => w.path === v.schedule.workflowFile)!.id
          await client.dispatchWorkflow(id, 'main', { slot: slot.toISOString() })
        }
      }
    }
    await keepWorkflowsAlive({
      client,
      visibility: 'public',
      workflows: model.list(),
      scheduledFiles: new Set(schedules.map((s) => s.workflowFile)),
      keptAt,
      now,
      dryRun: false,
      log: { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} } as never,
    })
  }

  const disabledSeen = new Set<string>()
  for (let e = events.pop(); e && e.at < end + day; e = events.pop()) {
    model.clock.now = e.at
    for (const w of model.list()) if (w.state !== 'active' && !disabledSeen.has(w.path)) disabledSeen.add(w.path)
    if (e.kind === 'tick') {
      for (const s of currentSlots(schedules, new Date(e.at))) {
        if (!claim(s.job, s.slot, 'dispatcher', e.at)) continue
        if (model.state(s.workflowFile) !== 'active') continue
        events.push({
          at: e.at + (0.5 + random.next() * 2.5) * minute,
          kind: 'start',
          job: s.job,
          trigger: 'dispatch',
          slot: s.slot,
        })
      }
      continue
    }
    const job = e.job!
    const schedule = schedules.find((s) => s.job === job) as JobSchedule
    if (stopped(job, e.at) || (e.trigger === 'schedule' && model.state(schedule.workflowFile) !== 'active')) continue
    const slot = e.slot ?? slotAt(schedule, new Date(e.at))!
    const k = key(job, slot)
    const busy = (runningUntil.get(job) ?? 0) > e.at
    const status = busy || servedBy.has(k) ? 'skipped' : 'succeeded'
    ledger.get(job)!.push({ trigger: e.trigger!, status, startedAt: new Date(e.at), slot })
    if (e.trigger === 'schedule') lastCron.set(job, new Date(e.at))
    if (status === 'skipped') continue
    runningUntil.set(job, e.at + durationOf(job))
    servedBy.set(k, e.at)
    executed.set(k, (executed.get(k) ?? 0) + 1)
    if (job === watchdogJob) await watchdogPass(e.at)
  }

  for (const s of schedules) {
    const interval = s.cron.some((c) => c.includes('*/') || /^[\d-]+\/\d+ \*/.test(c))
    for (const tick of runsBetween(s, new Date(start), new Date(end))) {
      const at = servedBy.get(key(s.job, tick))
      if (at === undefined) continue
      figures.served++
      figures.worstLatenessMs = Math.max(figures.worstLatenessMs, at - tick.getTime())
      if (!interval) figures.worstDailyLatenessMs = Math.max(figures.worstDailyLatenessMs, at - tick.getTime())
      if ((executed.get(key(s.job, tick)) ?? 0) > 1) figures.duplicates++
    }
  }
  figures.disabledByIdleness = disabledSeen.size
  figures.keepAliveCalls = model.keepAliveCalls()
  allExchanges.push(...model.exchanges)
  return figures
}

const format = (ms: number | undefined) =>
  ms === undefined
    ? 'not detected'
    : `${Math.floor(ms / hour)}h ${String(Math.round((ms % hour) / minute)).padStart(2, '0')}m`

describe('thirty days of GitHub’s weather', () => {
  let cron: Figures
  let dispatched: Figures

  beforeAll(async () => {
    cron = await simulate({ dispatcher: false, seed: 7 })
    dispatched = await simulate({ dispatcher: true, seed: 7 })
    for (const [name, f] of [
      ['GitHub cron only', cron],
      ['cron + pnpm jobs dispatch', dispatched],
    ] as const) {
      console.log(
        `${name}: ${f.served}/${f.slots} slots served; worst lateness ${format(f.worstLatenessMs)} (daily and slower: ${format(f.worstDailyLatenessMs)}); ` +
          `${f.duplicates} duplicate runs; critical alerts ${f.criticalAlerts.length} (false on ordinary days ${f.falseCriticalOrdinary}, on bad days ${f.falseCriticalBad}); ` +
          `GitHub-late warnings ${f.githubLateWarnings}; catch-ups ${f.catchUps}; stops detected after ${Object.entries(
            f.detectedAfterMs,
          )
            .map(([job, ms]) => `${job} ${format(ms)}`)
            .join(
              ', ',
            )}; workflows disabled for inactivity ${f.disabledByIdleness}; keep-alive calls ${f.keepAliveCalls}`,
      )
    }
  }, 300_000)

  it('runs no slot twice, with or without the dispatcher', () => {
    expect(cron.duplicates).toBe(0)
    expect(dispatched.duplicates).toBe(0)
  })

  it('pages nobody on an ordinary day, and nobody for lateness on a bad one', () => {
    expect(cron.falseCriticalOrdinary).toBe(0)
    expect(dispatched.falseCriticalOrdinary).toBe(0)
    expect(cron.falseCriticalBad).toBe(0)
    expect(dispatched.falseCriticalBad).toBe(0)
  })

  it('tells GitHub running late apart: one warning per bad spell, not one per job', () => {
    expect(cron.githubLateWarnings).toBeGreaterThanOrEqual(1)
    expect(cron.githubLateWarnings).toBeLessThanOrEqual(badDays.size)
  })

  it('detects each real stop of a critical job within the stated bound after its first missed fire time (an hour with the dispatcher, 4 hours 15 without)', () => {
    for (const stop of stops) {
      expect(dispatched.detectedAfterMs[stop.job], stop.job).toBeLessThanOrEqual(hour)
      expect(cron.detectedAfterMs[stop.job], stop.job).toBeLessThanOrEqual(4 * hour + 15 * minute)
    }
  })

  it('serves nearly every slot on time with the dispatcher, and keeps every schedule from the idle disable', () => {
    expect(dispatched.served / dispatched.slots).toBeGreaterThan(0.98)
    expect(dispatched.worstDailyLatenessMs).toBeLessThan(cron.worstDailyLatenessMs)
    expect(dispatched.worstDailyLatenessMs).toBeLessThanOrEqual(5 * minute)
    expect(cron.disabledByIdleness).toBe(0)
    expect(dispatched.disabledByIdleness).toBe(0)
    expect(cron.keepAliveCalls).toBeGreaterThanOrEqual(schedules.length)
  })

  it('speaks to the local GitHub as GitHub’s OpenAPI description has it', () => {
    const { problems, operations } = checkAgainstOpenApi(allExchanges.slice(0, 400))
    expect(problems).toEqual([])
    expect(operations).toEqual([
      'POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches',
      'PUT /repos/{owner}/{repo}/actions/workflows/{workflow_id}/enable',
    ])
  })
})
