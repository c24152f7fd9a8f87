import fs from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import { hasChromium, launchChromium, screenshotPath } from './support/browser.ts'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { createOpsRoot, type OpsRoot } from './support/ops-root.ts'
import { cliScript, startScript } from './support/run.ts'

let db: TestDatabase
let ops: OpsRoot

beforeAll(async () => {
  db = await createTestDatabase('serve')
  ops = createOpsRoot('serve')
  ops.writeWorkflows([
    { job: 'demo/sweep', cron: ['7 */6 * * *'] },
    { job: 'demo/held', cron: ['0 3 * * *'] },
    { job: 'demo/watch', cron: ['*/15 * * * *'] },
  ])
  const script = (critical: boolean) => `import { defineJob } from '@admin-jobs/sdk'
export default defineJob({ description: 'serve fixture', critical: ${critical}, async run() { return {} } })
`
  ops.writeScript('demo/sweep', script(false))
  ops.writeScript('demo/held', script(false))
  ops.writeScript('demo/watch', script(true))
  await db.sql`insert into jobs.runs (job, status, trigger, started_at, finished_at)
    select 'demo/sweep', case when i % 7 = 0 then 'failed' else 'succeeded' end, 'schedule',
           now() - make_interval(hours => i * 6), now() - make_interval(hours => i * 6) + make_interval(secs => 2 + i % 5)
    from generate_series(0, 39) i`
  await db.sql`insert into jobs.runs (job, status, trigger, started_at, finished_at)
    select 'demo/watch', 'succeeded', 'schedule', now() - make_interval(mins => i * 15),
           now() - make_interval(mins => i * 15) + interval '900 milliseconds'
    from generate_series(1, 60) i`
  await db.sql`insert into jobs.incidents (key, job, status, severity, title, detail, opened_at, failures) values
    ('security:brute-force-ip:198.51.100.7', 'notifications/security-alerts', 'open', 'critical',
     'Brute force: 120 failed logins from 198.51.100.7', '120 failed logins against 40 account(s)',
     now() - interval '12 minutes', 1)`
  await db.sql`insert into jobs.pauses (target, reason, paused_until, created_by)
    values ('demo/held', 'vendor maintenance window', now() + interval '6 hours', 'alice')`
})

/** Starts `pnpm jobs status --serve --port 0` as a process and returns it with the URL it serves. */
async function serve() {
  const child = startScript(cliScript, {
    args: ['status', '--serve', '--port', '0', '--root', ops.dir],
    env: { DATABASE_URL: db.url },
  })
  await child.waitFor(/serving the status page on http:\/\/127\.0\.0\.1:\d+\//, 60_000)
  const url = /serving the status page on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(child.output())![1]!
  return { child, url }
}

describe('pnpm jobs status --serve', () => {
  it('serves the page and its JSON live on 127.0.0.1, each request read afresh, and stops on SIGTERM with exit 0', async () => {
    const { child, url } = await serve()
    const page = await fetch(url)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8')
    const html = await page.text()
    expect(html).toContain('<meta http-equiv="refresh" content="30">')
    expect(html).toContain('Brute force: 120 failed logins from 198.51.100.7')
    expect(html).toContain('demo/held paused until')
    const json = await (await fetch(`${url}status.json`)).json()
    expect(json.openIncidents.map((i: { key: string }) => i.key)).toEqual([
      'security:brute-force-ip:198.51.100.7',
      'paused:demo/held',
    ])
    expect(json.jobs.map((j: { job: string }) => j.job)).toEqual(['demo/held', 'demo/sweep', 'demo/watch'])
    // Live: what happens after the start shows on the next request.
    await db.sql`insert into jobs.incidents (key, job, status, severity, title, opened_at) values
      ('health:https://shop.example', 'monitoring/health-check', 'open', 'warning', 'shop.example is down', now())`
    expect(await (await fetch(url)).text()).toContain('shop.example is down')
    expect((await fetch(`${url}nope`)).status).toBe(404)

    child.child.kill('SIGTERM')
    const result = await child.done
    expect(result.code, result.output).toBe(0)
    expect(result.stdout).toContain('SIGTERM: stopped serving')
    await expect(fetch(url)).rejects.toThrow()
    await db.sql`delete from jobs.incidents where key = 'health:https://shop.example'`
  })

  it('stops on SIGINT with exit 0 too', async () => {
    const { child } = await serve()
    child.child.kill('SIGINT')
    const result = await child.done
    expect(result.code, result.output).toBe(0)
    expect(result.stdout).toContain('SIGINT: stopped serving')
  })

  it.skipIf(!hasChromium)(
    `shows the open alert and the paused job first in headless Chromium, on a wide and a narrow screen${hasChromium ? '' : ' (skipped: no /usr/bin/chromium; apt-get install -y chromium)'}`,
    async () => {
      const { child, url } = await serve()
      const browser = await launchChromium()
      try {
        const page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
        await page.goto(url)
        const first = page.locator('#attention li.incident').first()
        await expect(first.getAttribute('data-kind')).resolves.toBe('security')
        expect((await first.textContent()) ?? '').toContain('Brute force: 120 failed logins from 198.51.100.7')
        expect(await page.locator('#attention li[data-kind="paused"]').textContent()).toContain(
          'demo/held paused until',
        )
        const held = page.locator('tr[data-job="demo/held"]')
        expect(await held.getAttribute('data-paused')).toBe('true')
        expect(await held.textContent()).toContain('vendor maintenance window')
        // The inline script kept every relative time current; the incidents come before the jobs.
        expect(Number(await page.locator('body').getAttribute('data-rendered'))).toBeGreaterThan(3)
        const attentionTop = (await page.locator('#attention').boundingBox())!.y
        const jobsTop = (await page.locator('#jobs').boundingBox())!.y
        expect(attentionTop).toBeLessThan(jobsTop)
        expect(await page.locator('#runs svg').count()).toBe(1)
        const wide = screenshotPath('status-served')
        await page.screenshot({ path: wide, fullPage: true })
        expect(fs.statSync(wide).size).toBeGreaterThan(20_000)

        await page.setViewportSize({ width: 420, height: 900 })
        await page.reload()
        // Narrow: the page itself does not scroll sideways (the jobs table scrolls within its box).
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
        expect(overflow).toBeLessThanOrEqual(0)
        await page.screenshot({ path: screenshotPath('status-narrow'), fullPage: true })
      } finally {
        await browser.close()
        child.child.kill('SIGTERM')
        await child.done
      }
    },
  )
})
