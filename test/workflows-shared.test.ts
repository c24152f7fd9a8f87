import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { main } from '@admin-jobs/sdk/cli'
import {
  dueAt,
  loadSchedules,
  loadSharedRunners,
  runsBetween,
  type SharedRunner,
  sharedRunnerOn,
} from '@admin-jobs/sdk/platform'
import { Cron } from 'croner'
import { describe, expect, test } from 'vitest'
import { condition, evaluate, loadWorkflows } from './support/workflows.ts'

// The shared runner's tick decides nothing about schedules: each monitor is due when its own workflow's schedule
// fired since the previous tick. These tests hold that over whole days of ticks, and the workflow to it.

const schedules = loadSchedules()
const [shared] = loadSharedRunners()
const workflows = loadWorkflows()
const file = workflows.find((w) => w.path === shared?.workflowFile)
const job = file ? Object.values<any>(file.doc.jobs)[0] : undefined

/** Every tick of the shared runner in [from, to). */
function ticks(runner: SharedRunner, from: Date, to: Date): Date[] {
  return runsBetween({ cron: [], timezone: undefined, entries: runner.tick }, from, to)
}

describe('the shared runner', () => {
  test('is frequent.yml, running every job whose schedule fires more often than hourly', () => {
    expect(shared?.workflowFile).toBe(path.join('.github', 'workflows', 'frequent.yml'))
    const frequent = schedules
      .filter((s) => {
        const times = runsBetween(s, new Date('2026-03-02T00:00:00Z'), new Date('2026-03-03T00:00:00Z'))
        return times.length > 24
      })
      .map((s) => s.job)
      .sort()
    expect([...shared!.jobs].sort()).toEqual(frequent)
    expect(frequent).toEqual([
      'monitoring/health-check',
      'monitoring/performance',
      'monitoring/watchdog',
      'notifications/security-alerts',
    ])
  })

  test('over a whole day of ticks runs each monitor exactly once per fire time of its own schedule', () => {
    const from = new Date('2026-03-02T00:00:00Z')
    const to = new Date('2026-03-03T00:00:00Z')
    const runs = new Map<string, number>()
    for (const tick of ticks(shared!, from, to)) {
      // A run starts some seconds after its tick (later still when GitHub is late): it serves the tick it starts in.
      for (const j of dueAt(shared!, schedules, new Date(tick.getTime() + 40_000)).jobs)
        if (j.due) runs.set(j.job, (runs.get(j.job) ?? 0) + 1)
    }
    for (const name of shared!.jobs) {
      const own = schedules.find((s) => s.job === name)!
      // The first fire times of the day before the first tick (00:02) belong to yesterday's last window.
      const fired = runsBetween(own, new Date(from.getTime() - 3 * 60_000), new Date(to.getTime() - 3 * 60_000))
      expect(runs.get(name), name).toBe(fired.length)
    }
    expect(runs.get('monitoring/health-check')).toBe(288)
    expect(runs.get('monitoring/watchdog')).toBe(48)
  })

  test('is due for a monitor in the tick after its fire time, and serves the tick a late run starts in', () => {
    const at = (iso: string) =>
      Object.fromEntries(dueAt(shared!, schedules, new Date(iso)).jobs.map((j) => [j.job, j.due]))
    expect(at('2026-03-02T10:07:00Z')).toEqual({
      'monitoring/health-check': true,
      'monitoring/performance': true, // 10:04
      'notifications/security-alerts': true, // 10:03
      'monitoring/watchdog': false, // 10:13
    })
    expect(at('2026-03-02T10:17:05Z')).toMatchObject({
      'monitoring/watchdog': true,
      'notifications/security-alerts': false,
    })
    // The 10:12 tick run by GitHub 9 minutes late serves the 10:17 tick (and the 10:12 window is left to the next
    // fire time of each monitor, as a dropped run of its own workflow would be).
    const late = dueAt(shared!, schedules, new Date('2026-03-02T10:21:00Z'))
    expect(late.tick.toISOString()).toBe('2026-03-02T10:17:00.000Z')
    expect(late.previous.toISOString()).toBe('2026-03-02T10:12:00.000Z')
  })

  test('reads each monitor’s schedule in its own time zone', () => {
    const runner: SharedRunner = {
      workflowFile: 'x.yml',
      workflowName: 'x',
      tick: [{ cron: '*/5 * * * *' }],
      jobs: ['a/b'],
    }
    const tz = [
      {
        job: 'a/b',
        workflowFile: 'a-b.yml',
        workflowName: 'a/b',
        cron: ['0 9 * * *'],
        timezone: 'America/New_York',
        entries: [{ cron: '0 9 * * *', timezone: 'America/New_York' }],
      },
    ]
    expect(dueAt(runner, tz, new Date('2026-01-15T14:00:30Z')).jobs[0]).toMatchObject({ due: true })
    expect(dueAt(runner, tz, new Date('2026-01-15T09:00:30Z')).jobs[0]).toMatchObject({ due: false })
  })

  test('is on unless ADMIN_JOBS_SHARED_RUNNER is false, and refuses any other value', () => {
    expect(sharedRunnerOn({})).toBe(true)
    expect(sharedRunnerOn({ ADMIN_JOBS_SHARED_RUNNER: 'true' })).toBe(true)
    expect(sharedRunnerOn({ ADMIN_JOBS_SHARED_RUNNER: 'FALSE' })).toBe(false)
    expect(() => sharedRunnerOn({ ADMIN_JOBS_SHARED_RUNNER: 'off' })).toThrow(
      /ADMIN_JOBS_SHARED_RUNNER must be true or false/,
    )
  })
})

describe('pnpm jobs due', () => {
  const run = async (args: string[], env: Record<string, string> = {}) => {
    const out: string[] = []
    const err: string[] = []
    const code = await main(['due', ...args], { env, stdout: (s) => out.push(s), stderr: (s) => err.push(s) })
    return { code, out: out.join('\n'), err: err.join('\n') }
  }

  test('writes each monitor’s due flag and the tick to GITHUB_OUTPUT, for the steps’ if: conditions', async () => {
    const output = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'aj-due-')), 'output')
    fs.writeFileSync(output, '')
    const result = await run([], { ADMIN_JOBS_NOW: '2026-03-02T10:17:40Z', GITHUB_OUTPUT: output })
    expect(result.code, result.err).toBe(0)
    expect(fs.readFileSync(output, 'utf8')).toBe(
      [
        'tick=2026-03-02T10:17:00.000Z',
        'monitoring-health-check=true',
        'monitoring-performance=true',
        'notifications-security-alerts=false',
        'monitoring-watchdog=true',
        '',
      ].join('\n'),
    )
    expect(result.out).toContain('monitoring/watchdog: due (its 2026-03-02T10:13:00.000Z run)')
    expect(result.out).toContain('notifications/security-alerts: not due')
  })

  test('marks every monitor due with --all, and answers --at and --json', async () => {
    const result = await run(['--all', '--json', '--at', '2026-03-02T10:17:40Z'])
    expect(result.code, result.err).toBe(0)
    const parsed = JSON.parse(result.out)
    expect(parsed.tick).toBe('2026-03-02T10:17:00.000Z')
    expect(parsed.jobs.every((j: { due: boolean }) => j.due)).toBe(true)
  })

  test('is a usage error (exit 2) for a bad time or a workflow that is not a shared runner', async () => {
    expect((await run(['--at', 'yesterday'])).code).toBe(2)
    const notShared = await run(['--workflow', '.github/workflows/cleanup-sessions.yml'])
    expect(notShared.code).toBe(2)
    expect(notShared.err).toContain('is not a workflow that runs several jobs')
  })
})

describe('frequent.yml', () => {
  const steps: any[] = job?.steps ?? []
  const monitorSteps = steps.filter((s) => typeof s.run === 'string' && /scripts\/[\w-]+\/[\w-]+\.ts/.test(s.run))

  test('gives each monitor step the env of the run step of the monitor’s own workflow, so settings reach both', () => {
    expect(monitorSteps.map((s) => /scripts\/([\w-]+\/[\w-]+)\.ts/.exec(s.run)![1])).toEqual(shared!.jobs)
    for (const step of monitorSteps) {
      const name = /scripts\/([\w-]+\/[\w-]+)\.ts/.exec(step.run)![1]
      const own = workflows.find((w) => w.job === name)!
      const ownStep = Object.values<any>(own.doc.jobs)
        .flatMap((j) => j.steps)
        .find((s: any) => s.run?.includes(`scripts/${name}.ts`))
      // A dispatched run of the job's own workflow names its slot; a shared step's run finds its slot from the job's
      // own schedule, so that one variable is the job workflow's alone.
      const { ADMIN_JOBS_SLOT, ...ownEnv } = ownStep.env
      expect(ADMIN_JOBS_SLOT).toBe('${{ inputs.slot }}')
      expect(step.env, name).toEqual(ownEnv)
      expect(step.run.trim()).toBe(ownStep.run.trim())
    }
  })

  test('runs a monitor step when it is due, even after another failed, but not once the run is cancelled', () => {
    for (const step of monitorSteps) {
      const output = `${step.id}`
      const ctx = (due: string) => ({
        steps: { due: { outputs: { [/scripts\/([\w-]+)\/([\w-]+)\.ts/.exec(step.run)!.slice(1).join('-')]: due } } },
      })
      expect(condition(step.if, ctx('true'), 'success'), output).toBe(true)
      expect(condition(step.if, ctx('true'), 'failure'), output).toBe(true)
      expect(condition(step.if, ctx('false'), 'success'), output).toBe(false)
      expect(condition(step.if, ctx('true'), 'cancelled'), output).toBe(false)
    }
  })

  test('bounds each monitor step a little above its job’s own timeout, and the job above all of them', async () => {
    const { loadJob } = await import('@admin-jobs/sdk/platform')
    const { toMs } = await import('@admin-jobs/sdk')
    let total = 0
    for (const step of steps) total += step['timeout-minutes'] ?? 0
    for (const step of monitorSteps) {
      const definition = await loadJob(/scripts\/([\w-]+\/[\w-]+)\.ts/.exec(step.run)![1]!)
      const minutes = toMs(definition.timeout ?? '15m') / 60_000
      expect(step['timeout-minutes'], step.id).toBeGreaterThan(minutes)
      expect(step['timeout-minutes'], step.id).toBeLessThanOrEqual(minutes + 3)
    }
    expect(job['timeout-minutes']).toBeGreaterThanOrEqual(total)
  })

  test('ends with a step that reads every monitor step’s outcome and fails the job when one failed', () => {
    const last = steps.at(-1)
    expect(last.if).toBe(`\${{ !cancelled() }}`)
    const read = Object.values<string>(last.env).join(' ')
    for (const step of monitorSteps) expect(read).toContain(`steps.${step.id}.outcome`)
  })

  test('takes turns with the monitors’ own workflows: exactly one of them starts a runner for a scheduled tick', () => {
    const event = (name: string, shared?: string) => ({
      github: { event_name: name },
      vars: shared === undefined ? {} : { ADMIN_JOBS_SHARED_RUNNER: shared },
    })
    for (const name of shared!.jobs) {
      const own = Object.values<any>(workflows.find((w) => w.job === name)!.doc.jobs)[0]
      for (const value of [undefined, 'true', 'false']) {
        const runs = [job.if, own.if].map((c) => condition(c, event('schedule', value), 'success'))
        expect(runs, `${name}, ADMIN_JOBS_SHARED_RUNNER=${value}`).toEqual(
          value === 'false' ? [false, true] : [true, false],
        )
      }
      expect(condition(own.if, event('workflow_dispatch'), 'success')).toBe(true)
    }
    // Jobs outside the shared runner keep their schedule whatever the variable says.
    for (const w of workflows.filter((x) => x.job && !shared!.jobs.includes(x.job)))
      for (const j of Object.values<any>(w.doc.jobs)) expect(j.if, w.file).toBeUndefined()
  })

  test('runs every monitor when dispatched with all, and only the due ones otherwise', () => {
    const step = steps.find((s) => s.id === 'due')
    const all = (event_name: string, value: boolean | undefined) =>
      evaluate(String(step.env.ALL), { github: { event_name }, inputs: value === undefined ? {} : { all: value } })
    expect(all('workflow_dispatch', true)).toBe('true')
    expect(all('workflow_dispatch', false)).toBe('')
    expect(all('schedule', undefined)).toBe('')
    expect(step.run).toBe(`pnpm jobs due \${ALL:+--all}`)
  })

  test('ticks every 5 minutes, off the top of the hour', () => {
    const times = new Cron(shared!.tick[0]!.cron, { paused: true, mode: '5-part' }).nextRuns(
      24,
      new Date('2026-03-02T00:00:00Z'),
    )
    expect(new Set(times.slice(1).map((t, i) => t.getTime() - times[i]!.getTime()))).toEqual(new Set([300_000]))
    expect(times.some((t) => t.getUTCMinutes() === 0)).toBe(false)
  })
})
