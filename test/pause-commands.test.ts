import { loadJobInfos, type Pause, parseUntil, pauseFor } from '@admin-jobs/sdk/platform'
import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { cliScript, runScript } from './support/run.ts'

let db: TestDatabase
const cli = cliScript

beforeAll(async () => {
  db = await createTestDatabase('pause')
})

const jobs = (args: string[]) => runScript(cli, { args, env: { DATABASE_URL: db.url, USER: 'alice' } })
const sessions = () => runScript('scripts/cleanup/sessions.ts', { env: { DATABASE_URL: db.url } })
const lastRun = async () =>
  (await db.sql`select status, note, stats from jobs.runs where job = 'cleanup/sessions' order by id desc limit 1`)[0]!

async function seedExpiredSession() {
  // One expired among ten, so the job's safety limit on the fraction it may delete never trips.
  await db.sql`insert into sessions (user_id, expires_at) values (1, now() - interval '1 day')`
  await db.sql`insert into sessions (user_id, expires_at) select 2, now() + interval '1 day' from generate_series(1, 9)`
}

describe('maintenance mode', () => {
  it('skips a paused job at once with the reason recorded, and changes nothing', async () => {
    await seedExpiredSession()
    const paused = await jobs(['pause', 'cleanup/sessions', '--until', '2h', '--reason', 'database upgrade'])
    expect(paused.code, paused.output).toBe(0)
    expect(paused.stdout).toMatch(/paused cleanup\/sessions until \d{4}-.*: database upgrade/)

    const result = await sessions()
    expect(result.code, result.output).toBe(0)
    expect(result.stdout).toContain('skipped: paused until')
    const run = await lastRun()
    expect(run.status).toBe('skipped')
    expect(run.note).toContain('database upgrade')
    const [{ n }] = await db.sql`select count(*)::int as n from sessions`
    expect(n).toBe(10)
  })

  it('lists active pauses with who paused and why', async () => {
    const listed = await jobs(['pause'])
    expect(listed.code).toBe(0)
    expect(listed.stdout).toMatch(/cleanup\/sessions\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+database upgrade\s+alice/)
  })

  it('runs the job again after resume', async () => {
    const resumed = await jobs(['resume', 'cleanup/sessions'])
    expect(resumed.stdout).toContain('resumed cleanup/sessions')
    expect((await sessions()).code).toBe(0)
    expect((await lastRun()).status).toBe('succeeded')
    const [{ n }] = await db.sql`select count(*)::int as n from sessions`
    expect(n).toBe(9)
  })

  it('pauses every job under all, names the exempt ones with their reason, and resume without arguments ends it', async () => {
    const paused = await jobs(['pause', 'all', '--until', '2026-12-31T00:00Z', '--reason', 'migration'])
    expect(paused.code, paused.output).toBe(0)
    expect(paused.stdout).toMatch(
      /backups\/database is exempt from pause all \(.+\): it keeps running; to stop it too: pnpm jobs pause backups\/database/,
    )
    expect(paused.stdout).toMatch(/notifications\/security-alerts is exempt from pause all \(.+\): it keeps running/)
    expect(paused.stdout).not.toContain('is running now')
    await sessions()
    expect((await lastRun()).note).toContain('paused (all jobs) until 2026-12-31T00:00:00.000Z: migration')

    const partial = await jobs(['resume', 'cleanup/sessions'])
    expect(partial.stdout).toContain('still paused by the pause of all jobs')
    const resumed = await jobs(['resume'])
    expect(resumed.stdout).toContain('resumed all jobs')
    await sessions()
    expect((await lastRun()).status).toBe('succeeded')
  })

  it('ends a pause by itself at --until', async () => {
    const paused = await jobs(['pause', 'cleanup/sessions', '--until', '1h', '--reason', 'short'])
    expect(paused.code).toBe(0)
    await sessions()
    expect((await lastRun()).status).toBe('skipped')
    // Bring the end of the pause close (a loaded machine can take seconds to start a job), then let it pass.
    await db.sql`update jobs.pauses set paused_until = now() + interval '1 second' where resumed_at is null`
    await new Promise((r) => setTimeout(r, 1300))
    await sessions()
    expect((await lastRun()).status).toBe('succeeded')
    const [{ n }] = await db.sql`select count(*)::int as n from jobs.pauses where resumed_at is null`
    expect(n).toBe(1)
  })

  it('refuses a pause without --until or --reason, in the past, or of an unknown job, with exit 2', async () => {
    const [noUntil, noReason, past, unknown] = await Promise.all([
      jobs(['pause', 'cleanup/sessions', '--reason', 'x']),
      jobs(['pause', 'cleanup/sessions', '--until', '1h']),
      jobs(['pause', 'cleanup/sessions', '--until', '2020-01-01T00:00Z', '--reason', 'x']),
      jobs(['pause', 'cleanup/nothing', '--until', '1h', '--reason', 'x']),
    ])
    expect([noUntil.code, noReason.code, past.code, unknown.code]).toEqual([2, 2, 2, 2])
    expect(noUntil.stderr).toContain('--until is required')
    expect(noReason.stderr).toContain('--reason is required')
    expect(past.stderr).toContain('in the future')
    expect(unknown.stderr).toContain('unknown job')
    const [{ n }] =
      await db.sql`select count(*)::int as n from jobs.pauses where resumed_at is null and paused_until > now()`
    expect(n).toBe(0)
  })
})

describe('which pause holds a job', () => {
  const pause = (target: string): Pause => ({
    id: 1,
    target,
    reason: 'r',
    until: new Date('2030-01-01T00:00:00Z'),
    createdAt: new Date(),
    createdBy: null,
  })

  it('keeps a job exempt from pause all running under all unless it is named', () => {
    expect(pauseFor('backups/database', [pause('all')], true)).toBeUndefined()
    expect(pauseFor('backups/database', [pause('all'), pause('backups/database')], true)?.target).toBe(
      'backups/database',
    )
    expect(pauseFor('reports/daily', [pause('all')])?.target).toBe('all')
    expect(pauseFor('reports/daily', [pause('cleanup/tokens')])).toBeUndefined()
  })

  it("takes the exemptions from the jobs' definitions: backups and security alerts keep running", async () => {
    const exempt = (await loadJobInfos()).filter((j) => j.exemptFromPauseAll).map((j) => j.id)
    expect(exempt).toEqual(['backups/database', 'notifications/security-alerts'])
  })

  it('reads --until as an ISO time in UTC or as a span from now', () => {
    const now = new Date('2026-11-28T12:00:00Z')
    expect(parseUntil('90m', now).toISOString()).toBe('2026-11-28T13:30:00.000Z')
    expect(parseUntil('1d', now).toISOString()).toBe('2026-11-29T12:00:00.000Z')
    expect(parseUntil('2026-11-28 18:00', now).toISOString()).toBe('2026-11-28T18:00:00.000Z')
    expect(parseUntil('2026-11-28T18:00+01:00', now).toISOString()).toBe('2026-11-28T17:00:00.000Z')
    expect(() => parseUntil('tomorrow', now)).toThrow(/--until/)
  })
})
