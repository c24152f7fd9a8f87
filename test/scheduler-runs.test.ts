import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { createOpsRoot, type OpsRoot } from './support/ops-root.ts'
import { cliScript, startScript } from './support/run.ts'

let db: TestDatabase
let ops: OpsRoot

const job = (body: string) => `import { defineJob, sleep } from '@admin-jobs/sdk'
export default defineJob({ description: 'scheduler fixture', timeout: '30s', retry: false, async run({ signal, log }) { ${body} } })
`

beforeAll(async () => {
  db = await createTestDatabase('scheduler')
  ops = createOpsRoot('scheduler')
  // Second-level patterns (6 fields) keep the test short; real workflows use 5-field crons.
  ops.writeWorkflows([
    { job: 'demo/quick', cron: ['0-58/2 * * * * *', '*/4 * * * * *'] },
    { job: 'demo/slow', cron: ['* * * * * *'] },
    { job: 'demo/manual', cron: [] },
  ])
  ops.writeScript('demo/quick', job(`log.info('quick ran'); return { ok: 1 }`))
  ops.writeScript('demo/slow', job(`await sleep(3000, signal); log.info('slow finished'); return { slept: 3 }`))
  ops.writeScript('demo/manual', job('return {}'))
})

const lines = (output: string, pattern: RegExp) => output.split('\n').filter((l) => pattern.test(l))

describe('pnpm jobs schedule', () => {
  it('starts due jobs on their schedule, never two of one job at once, and drains on SIGTERM', async () => {
    const scheduler = startScript(cliScript, {
      args: ['schedule', '--root', ops.dir],
      env: { DATABASE_URL: db.url },
    })
    await scheduler.waitFor('started demo/slow', 15_000)
    await scheduler.waitFor('demo/slow is still running; this start is skipped', 15_000)
    await scheduler.waitFor(/demo\/quick succeeded[\s\S]*started demo\/quick/, 20_000)
    // SIGTERM while demo/slow is running: it finishes its run, nothing new starts.
    await scheduler.waitFor(/started demo\/slow/)
    const slowStarts = () => lines(scheduler.output(), /started demo\/slow/).length
    // Signal right after a fresh start of demo/slow, which then has about three seconds left to run.
    const seen = slowStarts()
    while (slowStarts() === seen) await new Promise((r) => setTimeout(r, 20))
    scheduler.child.kill('SIGTERM')
    const result = await scheduler.done
    expect(result.code, result.output).toBe(0)

    const output = result.output
    const afterSignal = output.slice(output.indexOf('SIGTERM: no new starts'))
    // demo/quick may be under way too (both fire on even seconds), listed before or after demo/slow.
    expect(afterSignal).toMatch(/draining: waiting for (demo\/quick, demo\/slow|demo\/slow(, demo\/quick)?) to finish/)
    expect(afterSignal).not.toMatch(/started demo/)
    expect(afterSignal).toMatch(/demo\/slow succeeded exit=0 process=\d/)
    expect(afterSignal).toContain('scheduler stopped')
    expect(output).not.toContain('demo/manual')

    // Each start fired on its (even) second, before the child had even booted.
    for (const line of lines(output, /\[scheduler\] started demo\/quick/)) {
      const [, seconds, millis] = /^\d\d:\d\d:(\d\d)\.(\d{3})/.exec(line)!
      expect(Number(seconds) % 2, line).toBe(0)
      expect(Number(millis), line).toBeLessThan(900)
    }

    const runs = await db.sql<{ job: string; status: string; trigger: string; started_at: Date; finished_at: Date }[]>`
      select job, status, trigger, started_at, finished_at from jobs.runs order by started_at`
    expect(runs.every((r) => r.trigger === 'scheduler')).toBe(true)
    expect(runs.every((r) => r.status === 'succeeded')).toBe(true)
    const slow = runs.filter((r) => r.job === 'demo/slow')
    expect(slow.length).toBe(slowStarts())
    for (let i = 1; i < slow.length; i++) expect(slow[i]!.started_at >= slow[i - 1]!.finished_at).toBe(true)
    expect(runs.filter((r) => r.job === 'demo/quick').length).toBeGreaterThanOrEqual(2)
  })

  it('stops a job that outlasts --drain-timeout with SIGTERM, which records it as cancelled', async () => {
    const scheduler = startScript(cliScript, {
      args: ['schedule', '--root', ops.dir, '--only', 'demo/slow', '--drain-timeout', '500ms'],
      env: { DATABASE_URL: db.url },
    })
    const [{ before }] = await db.sql`select count(*)::int as before from jobs.runs where status = 'cancelled'`
    // Signal once the run is recorded as running (before that, SIGTERM ends it without a run row).
    for (let i = 0; i < 400; i++) {
      const [{ n }] = await db.sql`select count(*)::int as n from jobs.runs where status = 'running'`
      if (n > 0) break
      await new Promise((r) => setTimeout(r, 50))
    }
    scheduler.child.kill('SIGTERM')
    const result = await scheduler.done
    expect(result.code, result.output).toBe(0)
    expect(result.output).toContain('stopping demo/slow with SIGTERM')
    expect(result.output).toMatch(/demo\/slow interrupted \(SIGTERM\)/)
    const [{ after }] = await db.sql`select count(*)::int as after from jobs.runs where status = 'cancelled'`
    expect(after).toBe(before + 1)
  })

  it('refuses a schedule croner cannot read with exit 2, naming the workflow', async () => {
    const bad = createOpsRoot('scheduler-bad')
    bad.writeWorkflows([{ job: 'demo/quick', cron: ['0 9 * * *'], timezone: 'Mars/Olympus_Mons' }])
    const result = await startScript(cliScript, {
      args: ['schedule', '--root', bad.dir],
      env: { DATABASE_URL: db.url },
    }).done
    expect(result.code, result.output).toBe(2)
    expect(result.stderr).toContain(
      '.github/workflows/demo-quick.yml: cannot schedule "0 9 * * *" in Mars/Olympus_Mons',
    )
  })

  it('refuses an unknown --only job with exit 2', async () => {
    const result = await startScript(cliScript, {
      args: ['schedule', '--root', ops.dir, '--only', 'demo/nothing'],
      env: { DATABASE_URL: db.url },
    }).done
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('demo/nothing')
  })
})
