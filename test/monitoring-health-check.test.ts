import { execFileSync } from 'node:child_process'
import fs from 'node:fs/promises'
import { createServer as createHttpsServer, type Server } from 'node:https'
import net, { type AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { probeAll, probeUrl } from '#monitoring'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runJobScript, runScript, startScript } from './support/run.ts'
import { type HttpCapture, startHttp } from './support/servers.ts'

const script = 'scripts/monitoring/health-check.ts'
const minute = 60_000

/** A self-signed certificate for 127.0.0.1 valid for `days`, written by the openssl CLI. */
function makeCertificate(dir: string, name: string, days: number) {
  const key = path.join(dir, `${name}.key`)
  const cert = path.join(dir, `${name}.pem`)
  // biome-ignore format: the argv reads better in pairs
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', String(days), '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: 'ignore' })
  return { key, cert }
}

async function startHttps(files: { key: string; cert: string }): Promise<{ url: string; server: Server }> {
  const server = createHttpsServer(
    { key: await fs.readFile(files.key), cert: await fs.readFile(files.cert) },
    (_req, res) => res.end('ok'),
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/health`, server }
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms))

let db: TestDatabase
let tmp: string
let soonCert: { key: string; cert: string }
let laterCert: { key: string; cert: string }
let caBundle: string
let slack: HttpCapture
const closers: (() => Promise<void>)[] = []

beforeAll(async () => {
  db = await createTestDatabase('health')
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'aj-health-'))
  soonCert = makeCertificate(tmp, 'soon', 5)
  laterCert = makeCertificate(tmp, 'later', 365)
  caBundle = path.join(tmp, 'ca.pem')
  await fs.writeFile(
    caBundle,
    `${await fs.readFile(soonCert.cert, 'utf8')}${await fs.readFile(laterCert.cert, 'utf8')}`,
  )
  slack = await startHttp((_req, res) => void res.end('ok'))
  closers.push(slack.close)
})

afterAll(async () => {
  for (const close of closers) await close()
  await fs.rm(tmp, { recursive: true, force: true })
})

describe('probes', () => {
  it('probes 20 slow targets in about the time of the slowest, not the sum', async () => {
    const slow = await startHttp(async (_req, res) => {
      await delay(400)
      res.end('ok')
    })
    closers.push(slow.close)
    const urls = Array.from({ length: 20 }, (_, i) => `${slow.url}/t${i}`)
    const started = performance.now()
    const results = await probeAll(urls, { timeoutMs: 5000 })
    const elapsed = performance.now() - started
    expect(results.every((r) => r.ok && r.status === 200)).toBe(true)
    expect(results.every((r) => r.latencyMs >= 390)).toBe(true)
    // Sequential would take 20 × 400 ms = 8 s.
    expect(elapsed).toBeLessThan(5000)
  })

  it('gives up on a target that does not answer within the timeout', async () => {
    const hang = await startHttp(async (_req, res) => {
      await delay(3000)
      res.end('late')
    })
    closers.push(hang.close)
    const started = performance.now()
    const result = await probeUrl(hang.url, { timeoutMs: 300 })
    expect(result.ok).toBe(false)
    expect(result.code).toBe('ETIMEDOUT')
    expect(performance.now() - started).toBeLessThan(2500)
  })

  it('reports the days left on an https certificate and fails on an untrusted one', async () => {
    const https = await startHttps(soonCert)
    closers.push(() => new Promise((r) => https.server.close(() => r())))
    const trusted = await probeUrl(https.url, { ca: await fs.readFile(soonCert.cert) })
    expect(trusted.ok).toBe(true)
    expect(trusted.certDaysLeft).toBeGreaterThan(4)
    expect(trusted.certDaysLeft).toBeLessThanOrEqual(5)
    const untrusted = await probeUrl(https.url)
    expect(untrusted.ok).toBe(false)
    expect(untrusted.code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/)
  })

  it('redacts a password in the target it reports', async () => {
    const result = await probeUrl('http://user:hunter22@127.0.0.1:1/health', { timeoutMs: 1000 })
    expect(result.ok).toBe(false)
    expect(result.target).toBe('http://user:***@127.0.0.1:1/health')
  })
})

describe('monitoring/health-check', () => {
  it('alerts on the second failure, reminds hourly, recovers once, and warns about a certificate once a day', async () => {
    let flakyDown = false
    let slowOn = false
    const flaky = await startHttp((_req, res) => {
      res.statusCode = flakyDown ? 503 : 200
      res.end(flakyDown ? 'unavailable' : 'ok')
    })
    const slow = await startHttp(async (_req, res) => {
      if (slowOn) await delay(1500)
      res.end('ok')
    })
    const soon = await startHttps(soonCert)
    const later = await startHttps(laterCert)
    closers.push(flaky.close, slow.close, () => new Promise((r) => soon.server.close(() => r())))
    closers.push(() => new Promise((r) => later.server.close(() => r())))
    const dataDir = path.join(tmp, 'data-sequence')
    const summaryFile = path.join(tmp, 'summary.md')
    // Half an hour back, so whole days left on the 5-day certificate stay 5 at first and 4 a day later.
    const base = new Date(Date.now() - 30 * minute)
    const sent = slack.requests.length
    const runAt = async (offsetMinutes: number) => {
      await fs.writeFile(summaryFile, '')
      const result = await runScript(script, {
        env: {
          DATABASE_URL: db.url,
          ADMIN_JOBS_DATA_DIR: dataDir,
          ADMIN_JOBS_NOW: new Date(base.getTime() + offsetMinutes * minute).toISOString(),
          HEALTHCHECK_URLS: [flaky.url, slow.url, soon.url, later.url].join(','),
          HEALTHCHECK_TIMEOUT: '1s',
          NODE_EXTRA_CA_CERTS: caBundle,
          SLACK_WEBHOOK_URL: `${slack.url}/hook`,
          GITHUB_ACTIONS: 'true',
          GITHUB_STEP_SUMMARY: summaryFile,
        },
      })
      expect(result.code, result.output).toBe(0)
      return result
    }

    await runAt(0) // all up; the expiring certificate warns at once
    flakyDown = true
    slowOn = true
    await runAt(5) // first failure of both: no alert
    await runAt(10) // second failure: one alert each
    slowOn = false
    await runAt(15) // slow target fast again: recovery; flaky still down but notified < 1h ago
    await runAt(70) // an hour after the alert: reminder
    flakyDown = false
    await runAt(75) // back up: one recovery
    await runAt(24 * 60 + 1) // a day after the certificate warning: once more

    const alerts = await db.sql<{ dedupe_key: string; kind: string; title: string; text: string }[]>`
      select incident_key as dedupe_key, kind, subject as title, text from jobs.messages order by id`
    const sequence = (key: string) => alerts.filter((a) => a.dedupe_key === key).map((a) => a.kind)
    expect(sequence(`health:${flaky.url}`)).toEqual(['alert', 'reminder', 'recovery'])
    expect(sequence(`health:${slow.url}`)).toEqual(['alert', 'recovery'])
    expect(sequence(`cert:${soon.url}`)).toEqual(['alert', 'reminder'])
    expect(sequence(`cert:${later.url}`)).toEqual([])
    expect(alerts).toHaveLength(7)
    const flakyRecovery = alerts.find((a) => a.dedupe_key === `health:${flaky.url}` && a.kind === 'recovery')!
    expect(flakyRecovery.text).toContain('Back to normal after 1h 10m.')
    const slowAlert = alerts.find((a) => a.dedupe_key === `health:${slow.url}` && a.kind === 'alert')!
    expect(slowAlert.text).toMatch(/no answer within 1000ms/)
    expect(alerts.find((a) => a.dedupe_key === `cert:${soon.url}`)!.title).toMatch(/expires in 5 days/)
    // Every decision reached Slack exactly once.
    expect(slack.requests.length - sent).toBe(7)

    const [{ n }] = await db.sql`select count(*)::int as n from jobs.health_samples`
    expect(n).toBe(7 * 5)
    const targets = await db.sql`select target, up, cert_expires_at from jobs.health_targets order by target`
    expect(targets.map((t) => t.up)).toEqual([true, true, true, true, true])
    const summary = await fs.readFile(summaryFile, 'utf8')
    expect(summary).toContain('| Target | Status | Latency | HTTP | Certificate | Alert |')
    const soonRow = summary.split('\n').find((line) => line.startsWith(`| ${soon.url} |`))
    expect(soonRow).toMatch(/\| ✅ up \| [^|]+ \| 200 \| ⚠️ 4 days \| reminder \|$/)
  })

  it('prunes samples older than 30 days and forgets targets no longer configured', async () => {
    const up = await startHttp((_req, res) => void res.end('ok'))
    closers.push(up.close)
    const now = new Date('2031-01-01T00:00:00Z')
    await db.sql`
      insert into jobs.health_samples (checked_at, target, kind, up)
      values (${new Date(now.getTime() - 31 * 86_400_000)}, 'http://old.example/', 'http', true),
             (${new Date(now.getTime() - 29 * 86_400_000)}, 'http://recent.example/', 'http', true)`
    const result = await runJobScript(script, {
      env: {
        DATABASE_URL: db.url,
        ADMIN_JOBS_DATA_DIR: path.join(tmp, 'data-prune'),
        ADMIN_JOBS_NOW: now.toISOString(),
        HEALTHCHECK_URLS: up.url,
      },
    })
    expect(result.code, result.output).toBe(0)
    const old = await db.sql`select 1 from jobs.health_samples where target = 'http://old.example/'`
    const recent = await db.sql`select 1 from jobs.health_samples where target = 'http://recent.example/'`
    expect([old.length, recent.length]).toEqual([0, 1])
    const targets = await db.sql`select target from jobs.health_targets order by target`
    expect(targets.map((t) => t.target)).toEqual(['database', up.url])
    const policy = await db.sql`select key from jobs.incidents where key like 'health:%' or key like 'cert:%'`
    expect(policy).toEqual([])
  })

  it('counts nothing against a target when the run is stopped mid-probe (SIGTERM, SIGINT)', async () => {
    const hang = await startHttp(async (_req, res) => {
      await delay(20_000)
      res.end('late')
    })
    closers.push(hang.close)
    const env = {
      DATABASE_URL: db.url,
      ADMIN_JOBS_DATA_DIR: path.join(tmp, 'data-stopped'),
      HEALTHCHECK_URLS: `${hang.url}/stopped`,
      HEALTHCHECK_TIMEOUT: '1m',
      SLACK_WEBHOOK_URL: `${slack.url}/stopped`,
    }
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const job = startScript(script, { env })
      await job.waitFor('starting')
      await delay(1500)
      job.child.kill(signal)
      const result = await job.done
      expect(result.code, result.output).toBe(signal === 'SIGTERM' ? 143 : 130)
    }
    const state = await db.sql`select failures from jobs.incidents where key = ${`health:${hang.url}/stopped`}`
    expect(state.map((r) => r.failures).filter((n) => n > 0)).toEqual([])
    expect(slack.requests.filter((r) => r.url.endsWith('/stopped'))).toHaveLength(0)
    const runs = await db.sql`
      select status from jobs.runs where job = 'monitoring/health-check' order by id desc limit 2`
    expect(runs.map((r) => r.status)).toEqual(['cancelled', 'cancelled'])
  })

  it('records and sends nothing in a dry run, even when an alert would be due', async () => {
    const hook = await startHttp((_req, res) => void res.end('ok'))
    const broken = await startHttp((_req, res) => {
      res.statusCode = 502
      res.end()
    })
    closers.push(hook.close, broken.close)
    const result = await runJobScript(script, {
      args: ['--dry-run'],
      env: {
        DATABASE_URL: db.url,
        ADMIN_JOBS_DATA_DIR: path.join(tmp, 'data-dry'),
        HEALTHCHECK_URLS: broken.url,
        HEALTHCHECK_FAILURES: '1',
        SLACK_WEBHOOK_URL: `${hook.url}/hook`,
      },
    })
    expect(result.code, result.output).toBe(0)
    expect(result.output).toContain('dry run: would send alert')
    expect(hook.requests).toHaveLength(0)
    const written = await db.sql`
      select (select count(*)::int from jobs.health_samples where target = ${broken.url}) as samples,
             (select count(*)::int from jobs.incidents where key = ${`health:${broken.url}`}) as states`
    expect(written[0]).toEqual({ samples: 0, states: 0 })
  })

  it('raises one database incident for every job that cannot connect, then one recovery', async () => {
    const hook = await startHttp((_req, res) => void res.end('ok'))
    closers.push(hook.close)
    const target = await startHttp((_req, res) => {
      res.statusCode = 500
      res.end()
    })
    closers.push(target.close)
    const dataDir = path.join(tmp, 'data-storm')
    const common = {
      ADMIN_JOBS_DATA_DIR: dataDir,
      SLACK_WEBHOOK_URL: `${hook.url}/hook`,
      HEALTHCHECK_URLS: target.url,
    }
    // The database server as the jobs see it: a TCP relay to the test server that is shut (connections refused) during
    // the outage and listens again on the same port after it.
    const server = new URL(db.url)
    const relay = net.createServer((client) => {
      const upstream = net.connect(Number(server.port || 5432), server.hostname)
      client.pipe(upstream).pipe(client)
      client.on('error', () => upstream.destroy())
      upstream.on('error', () => client.destroy())
    })
    const port = await new Promise<number>((resolve) =>
      relay.listen(0, '127.0.0.1', () => resolve((relay.address() as AddressInfo).port)),
    )
    await new Promise((resolve) => relay.close(resolve))
    const relayed = new URL(db.url)
    relayed.hostname = '127.0.0.1'
    relayed.port = String(port)
    relayed.password = 's3cretpw'
    const env = { ...common, DATABASE_URL: relayed.toString() }
    const results = await Promise.all([script, 'scripts/cleanup/sessions.ts'].map((s) => runScript(s, { env })))
    results.push(await runScript(script, { env }))
    expect(results.map((r) => r.code)).toEqual([1, 1, 1])
    // Three failed runs across two jobs, one alert; the target behind the database raised nothing.
    expect(hook.requests).toHaveLength(1)
    expect(hook.requests[0]!.json().text).toContain('Database unreachable')
    expect(hook.requests[0]!.body).not.toContain('s3cretpw')
    // The incident is this server's: its state is kept apart from any other database watched from this machine.
    const stateFile = path.join(dataDir, 'alert-state', `127.0.0.1_${port}_${db.name}`, 'database.json')
    const state = JSON.parse(await fs.readFile(stateFile, 'utf8'))
    expect(state.failures).toBe(3)

    await new Promise<void>((resolve) => relay.listen(port, '127.0.0.1', resolve))
    closers.push(() => new Promise<void>((resolve) => relay.close(() => resolve())))
    const back = await runScript(script, { env })
    expect(back.code, back.output).toBe(0)
    expect(hook.requests).toHaveLength(2)
    expect(hook.requests[1]!.json().text).toMatch(/Resolved: Database unreachable/)
    const cleared = JSON.parse(await fs.readFile(stateFile, 'utf8'))
    expect([cleared.failures, cleared.alertedAt]).toEqual([0, null])
    const again = await runScript(script, { env })
    expect(again.code, again.output).toBe(0)
    // The target failing on its own now counts from zero: second run, one alert of its own.
    expect(hook.requests.map((r) => r.json().text.split('\n')[0])).toEqual([
      expect.stringContaining('Database unreachable'),
      expect.stringContaining('Resolved: Database unreachable'),
      expect.stringContaining(`${target.url} is down`),
    ])
  })
})
