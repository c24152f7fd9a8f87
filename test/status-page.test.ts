import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { createOpsRoot, type OpsRoot } from './support/ops-root.ts'
import { cliScript, runScript } from './support/run.ts'

const chromium = '/usr/bin/chromium'
const hasChromium = fs.existsSync(chromium)
let db: TestDatabase
let ops: OpsRoot
let page: string

const job = (critical: boolean) => `import { defineJob } from '@admin-jobs/sdk'
export default defineJob({ description: 'status fixture', critical: ${critical}, async run() { return {} } })
`

beforeAll(async () => {
  db = await createTestDatabase('status')
  ops = createOpsRoot('status')
  ops.writeWorkflows([
    { job: 'demo/alpha', cron: ['7 */6 * * *'] },
    { job: 'demo/beta', cron: ['0 9 * * *'], timezone: 'Europe/Berlin' },
    { job: 'demo/gamma', cron: ['0 2 * * 0'] },
  ])
  ops.writeScript('demo/alpha', job(true))
  ops.writeScript('demo/beta', job(false))
  ops.writeScript('demo/gamma', job(false))
  // demo/alpha: nine successes of 1..9 s and one failure in the last 30 days, plus an old failure outside the window.
  for (let i = 1; i <= 9; i++) {
    await db.sql`insert into jobs.runs (job, status, trigger, started_at, finished_at)
      values ('demo/alpha', 'succeeded', 'schedule', now() - make_interval(hours => ${(12 - i) * 6}),
              now() - make_interval(hours => ${(12 - i) * 6}) + make_interval(secs => ${i}))`
  }
  await db.sql`insert into jobs.runs (job, status, trigger, started_at, finished_at, error) values
    ('demo/alpha', 'failed', 'schedule', now() - interval '40 days', now() - interval '40 days' + interval '2 seconds', 'old'),
    ('demo/alpha', 'failed', 'schedule', now() - interval '1 hour', now() - interval '1 hour' + interval '20 seconds',
     'upstream <script>alert(1)</script> refused')`
  await db.sql`insert into jobs.runs (job, status, trigger, started_at, finished_at, dry_run) values
    ('demo/beta', 'succeeded', 'schedule', now() - interval '1 day', now() - interval '1 day' + interval '3 seconds', false),
    ('demo/beta', 'failed', 'local', now() - interval '2 hours', now() - interval '2 hours', true)`
  await db.sql`insert into jobs.pauses (target, reason, paused_until) values ('demo/beta', 'vendor outage', now() + interval '1 day')`
  page = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'status-page-')), 'status.html')
})

const jobs = (args: string[]) =>
  runScript(cliScript, { args: [...args, '--root', ops.dir], env: { DATABASE_URL: db.url } })

describe('pnpm jobs status', () => {
  it('prints open incidents, then last result, next run, lateness, 30-day success rate and median duration per job', async () => {
    const result = await jobs(['status'])
    expect(result.code, result.output).toBe(0)
    const lines = result.stdout.split('\n')
    expect(lines[0]).toBe('Open incidents (1):')
    expect(lines[1]).toMatch(
      /^ {2}- {2}paused {3}demo\/beta paused until \d{4}-\d\d-\d\d \d\d:\d\d UTC: vendor outage$/,
    )
    const row = (job: string) => lines.find((l) => l.startsWith(job))!
    expect(row('demo/alpha *')).toMatch(
      /^demo\/alpha \* +failed +1 h ago +in \d+ (min|h \d+ min|h) +- +90% of 10 +5\.0s$/,
    )
    expect(row('demo/beta')).toMatch(/succeeded +24 h ago +paused +- +100% of 1 +3\.0s$/)
    expect(row('demo/gamma')).toMatch(/never run +- +in \d+ (days?|h)\b.* +- +- +-$/)
  })

  it('writes one self-contained HTML page with no external assets', async () => {
    const result = await jobs(['status', '--html', page])
    expect(result.code, result.output).toBe(0)
    const html = fs.readFileSync(page, 'utf8')
    expect(html).not.toMatch(/\b(src|href)\s*=/i)
    expect(html).not.toMatch(/url\(|@import/i)
    expect(html).not.toContain('<script>alert(1)</script>')
    expect(html).toContain('upstream &lt;script&gt;alert(1)&lt;/script&gt; refused')
  })

  it.skipIf(!hasChromium)(
    `shows each job with its outcome strip and duration chart in headless Chromium${hasChromium ? '' : ' (skipped: no /usr/bin/chromium; apt-get install -y chromium)'}`,
    async () => {
      const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'chromium-'))
      const flags = [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        `--user-data-dir=${profile}`,
      ]
      const { stdout: dom } = await promisify(execFile)(chromium, [...flags, '--dump-dom', `file://${page}`], {
        timeout: 60_000,
        maxBuffer: 20_000_000,
      })
      const doc = new DOMParserLite(dom)
      // The inline script ran: every <time> got a relative label in the browser (the pause's start among them).
      expect(Number(/data-rendered="(\d+)"/.exec(dom)?.[1])).toBe(6)
      expect(doc.rows()).toEqual(['demo/alpha', 'demo/beta', 'demo/gamma'])
      const alpha = doc.row('demo/alpha')
      expect(alpha).toContain('data-last-status="failed"')
      expect(alpha).toContain('critical')
      expect(alpha).toMatch(/<span class="rel">1 h ago<\/span>/)
      expect(alpha.match(/<rect class="run /g)).toHaveLength(11)
      expect(alpha.match(/data-status="failed"/g)).toHaveLength(2)
      expect(alpha.match(/<rect class="bar"/g)).toHaveLength(11)
      expect(alpha).toContain('slowest 20.0s')
      const bars = [...alpha.matchAll(/data-ms="(\d+)"[^>]*height="(\d+)"/g)].map((m) => [Number(m[1]), Number(m[2])])
      const tallest = bars.reduce((a, b) => (b[1]! > a[1]! ? b : a))
      expect(tallest[0]).toBe(20_000)
      expect(doc.row('demo/beta')).toContain('paused until')
      expect(doc.row('demo/beta')).toContain('vendor outage')
      expect(doc.row('demo/beta').match(/<rect class="run /g)).toHaveLength(1)
      expect(doc.row('demo/gamma')).toContain('never run')
      expect(dom).toContain('1 open, 3 jobs, 1 failing, 1 paused')
      expect(dom).toMatch(/<li class="incident info" data-kind="paused" data-key="paused:demo\/beta">/)

      const shot = path.join(profile, 'status.png')
      await promisify(execFile)(
        chromium,
        [...flags, '--window-size=1400,600', `--screenshot=${shot}`, `file://${page}`],
        {
          timeout: 60_000,
        },
      )
      const png = fs.readFileSync(shot)
      expect(png.subarray(1, 4).toString()).toBe('PNG')
      expect(png.readUInt32BE(16)).toBe(1400)
      expect(png.length).toBeGreaterThan(10_000)
      fs.rmSync(profile, { recursive: true, force: true })
    },
  )
})

/** Just enough structure from Chromium's serialized DOM: rows by their data-job. */
class DOMParserLite {
  constructor(private readonly dom: string) {}
  rows(): string[] {
    return [...this.dom.matchAll(/<tr data-job="([^"]+)"/g)].map((m) => m[1]!)
  }
  row(job: string): string {
    const start = this.dom.indexOf(`<tr data-job="${job}"`)
    return this.dom.slice(start, this.dom.indexOf('</tr>', start))
  }
}
