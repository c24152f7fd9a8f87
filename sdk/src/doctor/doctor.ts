import fs from 'node:fs'
import path from 'node:path'
import type { Sql } from 'postgres'
import { parse } from 'yaml'
import { adminRoutes, deliverDue, enqueue } from '../alerting/outbox.ts'
import { type Config, type Env, parseConfig } from '../config/config.ts'
import { connect, databaseAddress } from '../database/client.ts'
import { pendingMigrations } from '../database/migrate.ts'
import { createGitHubClient, type GitHubWorkflow } from '../github/client.ts'
import { listJobIds } from '../project/registry.ts'
import { medianDurations } from '../records/runs.ts'
import { ConfigError, firstLine, toError } from '../runtime/errors.ts'
import { createLogger } from '../runtime/log.ts'
import { estimateMonthlyMinutes, perRunMinutes } from '../schedules/cost.ts'
import { loadSchedules } from '../schedules/schedules.ts'

/** One line of the doctor's report: what was checked, whether it passed, what was seen and how to fix it. */
export interface DoctorCheck {
  name: string
  ok: boolean
  detail: string
  fix?: string
}

/** Minutes a month each plan includes for private repositories on GitHub-hosted runners. */
export const planMinutes: Readonly<Record<string, number>> = Object.freeze({ free: 2000, pro: 3000, team: 3000 })

/** What the doctor checks beyond the environment: default plan `free`, no test message. */
export interface DoctorOptions {
  root: string
  /** Send one message to every admin channel through the outbox (queued and delivered at once). */
  sendTest?: boolean
  /** `free`, `pro`, `team` or minutes a month (default free). */
  plan?: string
}

const loopback = /^(localhost|127\.\d+\.\d+\.\d+|::1|\[::1\]|\/.*)$/

/** Runs every check, in the order the report lists them; never throws (a failing check is a line). */
export async function runDoctor(env: Env, options: DoctorOptions): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = []
  const add = (check: DoctorCheck) => checks.push(check)
  let config: Config
  try {
    config = parseConfig(env)
    add({ name: 'configuration', ok: true, detail: `settings read (environment ${config.environment})` })
  } catch (err) {
    const variable = err instanceof ConfigError ? err.variable : undefined
    add({
      name: 'configuration',
      ok: false,
      detail: firstLine(toError(err)),
      fix: `correct ${variable ?? 'the setting'}`,
    })
    return checks
  }
  const sql = await checkDatabase(config, add)
  try {
    await checkChannels(config, add)
    if (options.sendTest) await sendTest(sql, config, add)
    await checkHeartbeat(config, add)
    await checkGitHub(config, options, sql, add)
  } finally {
    await sql?.end({ timeout: 2 })
  }
  return checks
}

async function checkDatabase(config: Config, add: (c: DoctorCheck) => void): Promise<Sql | undefined> {
  if (!config.databaseUrl) {
    add({
      name: 'database',
      ok: true,
      detail: 'DATABASE_URL unset: local runs use the embedded PostgreSQL (on Actions it is required)',
    })
    return undefined
  }
  const { host, database } = databaseAddress(config.databaseUrl)
  const sql = connect(config.databaseUrl, { max: 1, applicationName: 'admin-jobs-doctor' })
  try {
    const [row] = await sql<{ version: string; ssl: boolean | null; tls: string | null }[]>`
      select current_setting('server_version') as version, s.ssl, s.version as tls
      from (select 1) one left join pg_stat_ssl s on s.pid = pg_backend_pid()`
    add({ name: 'database', ok: true, detail: `${database} on ${host} reachable, PostgreSQL ${row!.version}` })
    const encrypted = row!.ssl === true
    add({
      name: 'database TLS',
      ok: encrypted || loopback.test(host),
      detail: encrypted ? `encrypted (${row!.tls})` : `not encrypted${loopback.test(host) ? ' (a local server)' : ''}`,
      fix: encrypted ? undefined : 'add sslmode=verify-full (and the server CA) to DATABASE_URL',
    })
    const { created, pending } = await pendingMigrations(sql)
    add({
      name: 'migrations',
      ok: created && pending.length === 0,
      detail: !created
        ? 'no admin-jobs tables yet'
        : pending.length
          ? `${pending.length} pending: ${pending.join(', ')}`
          : 'up to date',
      fix: created && pending.length === 0 ? undefined : 'pnpm jobs migrate (or let the first job run apply them)',
    })
    return sql
  } catch (err) {
    add({
      name: 'database',
      ok: false,
      detail: `cannot reach ${database} on ${host}: ${firstLine(toError(err))}`,
      fix: 'check DATABASE_URL, the network path from here (firewall, tunnel) and the credentials',
    })
    await sql.end({ timeout: 1 }).catch(() => {})
    return undefined
  }
}

async function checkChannels(config: Config, add: (c: DoctorCheck) => void): Promise<void> {
  if (!config.smtpUrl && !config.slackWebhookUrl)
    add({
      name: 'alert channels',
      ok: false,
      detail: 'neither SMTP_URL nor SLACK_WEBHOOK_URL is set: alerts reach nobody',
      fix: 'set SMTP_URL and ALERT_EMAIL_TO, or SLACK_WEBHOOK_URL',
    })
  if (config.smtpUrl) {
    const { default: nodemailer } = await import('nodemailer')
    const transport = nodemailer.createTransport({
      url: config.smtpUrl,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
    } as never)
    try {
      await transport.verify()
      const to = config.alertEmailTo.length
      add({
        name: 'SMTP',
        ok: to > 0,
        detail: `server answered the handshake${to ? `; alerts go to ${to} address(es)` : '; ALERT_EMAIL_TO is empty'}`,
        fix: to ? undefined : 'set ALERT_EMAIL_TO',
      })
    } catch (err) {
      add({
        name: 'SMTP',
        ok: false,
        detail: firstLine(toError(err)),
        fix: 'check SMTP_URL (host, port, user, password, smtps://)',
      })
    } finally {
      transport.close()
    }
  }
  if (config.slackWebhookUrl) {
    const shape = /^https:\/\/hooks\.slack\.com\/services\/T\w+\/B\w+\/\w+$/.test(config.slackWebhookUrl)
    add({
      name: 'Slack',
      ok: shape,
      detail: shape
        ? 'an incoming-webhook URL'
        : 'not an incoming-webhook URL (https://hooks.slack.com/services/T…/B…/…)',
      fix: shape ? undefined : "copy the webhook URL from the Slack app's Incoming Webhooks page",
    })
  }
}

async function sendTest(sql: Sql | undefined, config: Config, add: (c: DoctorCheck) => void): Promise<void> {
  const routes = adminRoutes(config)
  if (!sql || routes.length === 0) {
    add({
      name: 'test message',
      ok: false,
      detail: sql ? 'no admin channel configured' : 'needs the database (the outbox)',
    })
    return
  }
  const at = new Date().toISOString()
  const text = `A test message from pnpm jobs doctor at ${at}: alerts reach this channel.`
  await enqueue(
    sql,
    { kind: 'doctor-test', key: `doctor-test:${at}`, subject: '[test] admin-jobs doctor', text, slack: { text } },
    routes,
    { from: config.alertEmailFrom },
  )
  const log = createLogger({ scope: 'doctor', secrets: config.secrets, write: () => {} })
  const report = await deliverDue(sql, { config, log })
  add({
    name: 'test message',
    ok: report.failed === 0 && report.retrying === 0 && report.skipped.length === 0,
    detail: `queued in the outbox and delivered: ${report.sent} sent, ${report.failed + report.retrying} not delivered`,
    fix: report.failed || report.retrying ? 'see jobs.deliveries.last_error for the channel that refused' : undefined,
  })
}

async function checkHeartbeat(config: Config, add: (c: DoctorCheck) => void): Promise<void> {
  const base = config.heartbeatUrl
  if (!base) {
    add({
      name: 'heartbeat',
      ok: true,
      detail: 'HEARTBEAT_URL unset: nothing outside GitHub notices the watchdog stopping',
    })
    return
  }
  try {
    // A HEAD on the base proves DNS, TLS and the route without pinging any job's check.
    const res = await fetch(base, { method: 'HEAD', signal: AbortSignal.timeout(5_000) })
    add({ name: 'heartbeat', ok: true, detail: `${new URL(base).host} answered (HTTP ${res.status})` })
  } catch (err) {
    add({ name: 'heartbeat', ok: false, detail: `no answer: ${firstLine(toError(err))}`, fix: 'check HEARTBEAT_URL' })
  }
}

/** Workflows whose GITHUB_TOKEN must be able to write Actions (enable, dispatch, re-run). */
const writers = ['monitoring-watchdog.yml', 'retry.yml']

async function checkGitHub(
  config: Config,
  options: DoctorOptions,
  sql: Sql | undefined,
  add: (c: DoctorCheck) => void,
) {
  const schedules = loadSchedules(options.root)
  const jobs = listJobIds(options.root)
  const missing = jobs.filter((j) => !schedules.some((s) => s.job === j))
  add({
    name: 'workflow files',
    ok: missing.length === 0,
    detail: missing.length
      ? `no workflow runs ${missing.join(', ')}`
      : `${schedules.length} job workflows for ${jobs.length} jobs`,
    fix: missing.length ? 'pnpm jobs new writes a workflow with a job; or add it by hand' : undefined,
  })
  const declared = writers.filter((file) => {
    const p = path.join(options.root, '.github', 'workflows', file)
    const doc = fs.existsSync(p)
      ? (parse(fs.readFileSync(p, 'utf8')) as { permissions?: Record<string, string> })
      : undefined
    return doc?.permissions?.actions === 'write'
  })
  add({
    name: 'workflow permissions',
    ok: declared.length === writers.length,
    detail: `actions: write declared by ${declared.join(', ') || 'none'} of ${writers.join(', ')}`,
    fix:
      declared.length === writers.length
        ? undefined
        : 'give the watchdog and retry workflows permissions: actions: write',
  })
  const { token, repository, apiUrl } = config.github
  if (!token || !repository) {
    add({
      name: 'GitHub token',
      ok: false,
      detail: 'GITHUB_TOKEN or GITHUB_REPOSITORY unset: no dispatch, catch-up or keep-alive',
      fix: 'set GITHUB_TOKEN (Actions: write) and GITHUB_REPOSITORY=owner/name',
    })
    return
  }
  const client = createGitHubClient({ token, repository, apiUrl, retries: 1 })
  let visibility = 'private'
  let listed: GitHubWorkflow[] = []
  try {
    const repo = await client.repository()
    visibility = repo.visibility
    listed = await client.listWorkflows()
    if (listed[0]) await client.listWorkflowRuns(listed[0].id, { perPage: 1 })
    if (repo.scopes) {
      const enough = repo.scopes.includes('repo') || (visibility === 'public' && repo.scopes.includes('public_repo'))
      add({
        name: 'GitHub token',
        ok: enough,
        detail: `classic token with scopes ${repo.scopes.join(', ') || 'none'}: ${enough ? 'enough to dispatch, enable and re-run' : 'cannot dispatch, enable or re-run'}`,
        fix: enough ? undefined : 'give the token the repo scope',
      })
    } else {
      add({
        name: 'GitHub token',
        ok: true,
        detail: `reads ${repository} (${visibility}), its workflows and runs (Actions: read). Write access of a fine-grained or Actions token cannot be read back without writing: on Actions it is the workflows' permissions (above); a dispatcher's token needs Actions: write`,
      })
    }
  } catch (err) {
    add({
      name: 'GitHub token',
      ok: false,
      detail: firstLine(toError(err)),
      fix: 'check GITHUB_TOKEN, GITHUB_REPOSITORY and that the token can read the repository and its Actions',
    })
    return
  }
  const byPath = new Map(listed.map((w) => [w.path.replace(/^\.\//, ''), w]))
  const problems = schedules
    .map((s) => ({ s, w: byPath.get(s.workflowFile.replace(/\\/g, '/')) }))
    .filter(({ w }) => w?.state !== 'active')
    .map(({ s, w }) => `${s.workflowFile} ${w ? w.state : 'not on GitHub (not pushed?)'}`)
  add({
    name: 'workflows on GitHub',
    ok: problems.length === 0,
    detail: problems.length ? problems.join('; ') : `all ${schedules.length} present and enabled`,
    fix: problems.length ? 'push the workflows, and enable them in the Actions tab' : undefined,
  })
  add(await checkMinutes(sql, schedules, visibility, options.plan))
}

async function checkMinutes(
  sql: Sql | undefined,
  schedules: ReturnType<typeof loadSchedules>,
  visibility: string,
  plan = 'free',
): Promise<DoctorCheck> {
  const medians = new Map<string, number>()
  if (sql) {
    for (const [job, ms] of await medianDurations(sql, 30).catch(() => new Map<string, number>())) medians.set(job, ms)
  }
  const total = schedules
    .filter((s) => s.cron.length > 0)
    .reduce((sum, s) => sum + estimateMonthlyMinutes(s.cron, perRunMinutes(medians.get(s.job))).minutesPerMonth, 0)
  const included = /^\d+$/.test(plan) ? Number(plan) : planMinutes[plan]
  if (included === undefined)
    return {
      name: 'Actions minutes',
      ok: false,
      detail: `unknown plan "${plan}"`,
      fix: '--plan free|pro|team|<minutes>',
    }
  if (visibility === 'public')
    return {
      name: 'Actions minutes',
      ok: true,
      detail: `~${total.toLocaleString('en-US')} min/month: free on standard runners of a public repository`,
    }
  const ok = total <= included
  return {
    name: 'Actions minutes',
    ok,
    detail: `~${total.toLocaleString('en-US')} min/month estimated against ${included.toLocaleString('en-US')} included (${plan})`,
    fix: ok
      ? undefined
      : 'run the jobs on a self-hosted runner (ADMIN_JOBS_RUNNER), lower the frequent schedules, or buy minutes',
  }
}
