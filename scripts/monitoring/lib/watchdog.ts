import fs from 'node:fs'
import path from 'node:path'
import {
  type AlertInput,
  type AlertResult,
  ConfigError,
  type EnvReader,
  firstLine,
  formatMs,
  type JobContext,
  type JobState,
  type Logger,
  type Summary,
  toError,
} from '@admin-jobs/sdk'
import {
  activePauses,
  checkFailing,
  closeStaleRuns,
  createGitHubClient,
  type DispatchClaim,
  type DispatchResult,
  describeSchedule,
  dispatchSlots,
  type GitHubClient,
  type JobInfo,
  lastPauseEnd,
  latenessWindowMs,
  latestRuns,
  loadJobInfos,
  loadSchedules,
  loadSharedRunners,
  measureLateness,
  openIncidents,
  pauseEnds,
  pauseFor,
  recentDispatches,
  recentFinishedRuns,
  recentRunTimings,
  repoRoot,
  slotAt,
} from '@admin-jobs/sdk/platform'
import type { Sql } from 'postgres'
import {
  defaultVerdictRules,
  firstUnansweredClaim,
  githubLateAfterMs,
  githubLateness,
  type JobView,
  judge,
  type Verdict,
} from './verdicts.ts'
import { keepWorkflowsAlive, reconcileWorkflows, type WorkflowState } from './workflows.ts'

/** The watchdog's own settings. */
export interface WatchdogSettings {
  /** Repository root whose `.github/workflows` and `scripts` are read (ADMIN_JOBS_ROOT, default: this checkout). */
  root: string
  /** WATCHDOG_GRACE: one allowance for every job instead of the learned one (docs/monitoring.md). */
  graceMs: number | undefined
  /** WATCHDOG_FAILURE_THRESHOLD: consecutive failed runs that make a job "keeps failing" (default 3). */
  failureThreshold: number
  /** WATCHDOG_DISPATCH_START: how long a dispatched run may take to start before its job counts as stopped (15m). */
  dispatchStartMs: number
  /** WATCHDOG_GITHUB_LATE: how far behind GitHub's cron must be, for most jobs, to count as running late (1h). */
  githubLateMs: number
}

/** Reads the watchdog's settings (ADMIN_JOBS_ROOT, WATCHDOG_GRACE, _FAILURE_THRESHOLD, _DISPATCH_START, _GITHUB_LATE). */
export function watchdogSettings(read: EnvReader): WatchdogSettings {
  const root = path.resolve(read.string('ADMIN_JOBS_ROOT', repoRoot()))
  if (!fs.existsSync(path.join(root, '.github', 'workflows')))
    throw new ConfigError(`ADMIN_JOBS_ROOT has no .github/workflows (got "${root}")`, { variable: 'ADMIN_JOBS_ROOT' })
  return {
    root,
    graceMs: read.string('WATCHDOG_GRACE') === undefined ? undefined : read.duration('WATCHDOG_GRACE', 0),
    failureThreshold: read.integer('WATCHDOG_FAILURE_THRESHOLD', 3, { min: 1, max: 100 }),
    dispatchStartMs: read.duration('WATCHDOG_DISPATCH_START', defaultVerdictRules.dispatchStartMs),
    githubLateMs: read.duration('WATCHDOG_GITHUB_LATE', githubLateAfterMs),
  }
}

/** What one watchdog pass works with: the job context's pieces, or a simulation's. */
export interface WatchInput {
  sql: Sql
  now: Date
  log: Logger
  dryRun: boolean
  settings: WatchdogSettings
  alert: (input: AlertInput) => Promise<AlertResult>
  resolveAlert: (key: string, notice?: { title?: string; text?: string }) => Promise<AlertResult>
  state: JobState
  summary: Pick<Summary, 'table'>
  /** The watchdog's own job id (its own schedule is kept alive, not judged). */
  self: string
  /** The GitHub API, when a token and a repository are set. */
  github?: GitHubClient
  /** The jobs' definitions (default: loaded from `settings.root`). */
  infos?: readonly JobInfo[]
}

const iso = (d: Date | undefined) => (d ? `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC` : 'never')

/** The watchdog run, from its job context. */
export async function watch(ctx: JobContext<WatchdogSettings>) {
  const { token, repository, apiUrl } = ctx.config.github
  const github =
    token && repository
      ? createGitHubClient({ token, repository, apiUrl, signal: ctx.signal, log: ctx.log })
      : undefined
  if (!github) ctx.log.info('GITHUB_TOKEN or GITHUB_REPOSITORY unset: workflow state not checked, no catch-up runs')
  return watchSchedules({
    sql: ctx.sql,
    now: ctx.now(),
    log: ctx.log,
    dryRun: ctx.dryRun,
    settings: ctx.settings,
    alert: (input) => ctx.alert(input),
    resolveAlert: (key, notice) => ctx.resolveAlert(key, notice),
    state: ctx.state,
    summary: ctx.summary,
    self: ctx.job,
    github,
  })
}

/**
 * One watchdog pass: learns each schedule's lateness, tells "GitHub is running late" (one warning per episode) from
 * "this job has stopped" (critical for a critical job), dispatches catch-up runs of jobs past their allowance, keeps
 * the workflows of a public repository alive, and reports failure streaks and disabled workflows.
 */
export async function watchSchedules(input: WatchInput) {
  const pass = await gather(input)
  const github = await checkWorkflows(input, pass)
  const stats = {
    checked: 0,
    late: 0,
    stopped: 0,
    caughtUp: 0,
    failing: 0,
    paused: 0,
    reenabled: 0,
    disabledManually: 0,
  }
  const table = createTable()
  const { catchUps, judged, scheduleErrors } = await judgeAll(input, pass, github, stats, table)
  const dispatched = await catchUp(input, catchUps, github.workflows, github.ref)
  for (const { view, verdict } of judged) {
    const refused = dispatched.get(view.job)
    const final: Verdict =
      refused?.outcome === 'refused'
        ? { kind: 'stopped', expectedAt: undefined, reason: `GitHub refused its catch-up dispatch: ${refused.detail}` }
        : verdict
    await report(input, view, final, pass.resolve, stats)
    const failing = await reportFailing(input, view, pass, stats)
    table.row(view, failing && final.kind === 'on-time' ? 'failing' : stateOf(final), noteOf(final, refused))
  }
  await reportGitHubLate(input, pass.lateGitHub)
  input.summary.table(table.rows)
  const githubLate = pass.lateGitHub !== undefined
  input.log.info('watchdog checked every scheduled job', { ...stats, githubLate })
  if (github.error) throw github.error
  if (scheduleErrors.length) throw new Error(`cannot read schedules: ${scheduleErrors.join('; ')}`)
  return { ...stats, githubLate, staleClosed: pass.staleClosed.length }
}

type Stats = Record<
  'checked' | 'late' | 'stopped' | 'caughtUp' | 'failing' | 'paused' | 'reenabled' | 'disabledManually',
  number
>
type Pass = Awaited<ReturnType<typeof gather>>
type WorkflowCheck = Awaited<ReturnType<typeof checkWorkflows>>

/** Everything a pass judges from: the schedules, the jobs' history, pauses, dispatches and open incidents. */
async function gather(input: WatchInput) {
  const { sql, log, settings, dryRun, now } = input
  const all = loadSchedules(settings.root).filter((s) => s.cron.length > 0)
  const schedules = all.filter((s) => s.job !== input.self)
  const infos = new Map((input.infos ?? (await loadJobInfos(settings.root))).map((j) => [j.id, j]))

  const staleClosed = dryRun ? [] : await closeStaleRuns(sql)
  if (staleClosed.length) log.warn('closed runs whose process stopped beating', { runs: staleClosed.join(',') })

  // Fire times from before the watchdog first saw a job are not expected (new jobs, first deployment).
  const firstSeen = (await input.state.get<Record<string, string>>('firstSeen')) ?? {}
  const unseen = schedules.filter((s) => firstSeen[s.job] === undefined)
  for (const s of unseen) firstSeen[s.job] = now.toISOString()
  if (unseen.length) await input.state.set('firstSeen', firstSeen)

  const [pauses, ends, latest, recent, timings, claims, open] = await Promise.all([
    activePauses(sql),
    pauseEnds(sql),
    latestRuns(sql),
    recentFinishedRuns(sql, settings.failureThreshold),
    recentRunTimings(sql, { since: new Date(now.getTime() - latenessWindowMs), until: now }),
    recentDispatches(sql, new Date(now.getTime() - 2 * 86_400_000)),
    openIncidents(sql),
  ])
  const openKeys = new Set(open.map((i) => i.key))
  const resolve = async (key: string, notice: { title: string; text: string }) => {
    if (openKeys.has(key)) await input.resolveAlert(key, notice)
  }
  const claimsOf = new Map<string, DispatchClaim[]>()
  for (const c of claims) claimsOf.set(c.job, [...(claimsOf.get(c.job) ?? []), c])

  const views: JobView[] = schedules.map((schedule) => {
    const exempt = infos.get(schedule.job)?.exemptFromPauseAll !== undefined
    const history = timings.get(schedule.job) ?? []
    const lastStart = latest.get(schedule.job)
    return {
      job: schedule.job,
      schedule,
      critical: infos.get(schedule.job)?.critical === true,
      lastStart,
      lastCronStart: history.filter((t) => t.trigger === 'schedule').at(-1)?.startedAt,
      // A job with history is judged from its last run; one without, from when the watchdog first saw it.
      watchFrom: maxDate(
        lastStart ? undefined : new Date(firstSeen[schedule.job]!),
        lastPauseEnd(schedule.job, ends, exempt),
      ),
      lateness: measureLateness(schedule, history, now, { overrideMs: settings.graceMs }),
      claim: firstUnansweredClaim(claimsOf.get(schedule.job) ?? [], lastStart),
    }
  })
  const lateGitHub = githubLateness(views, now, settings.githubLateMs)
  return { all, schedules, infos, staleClosed, pauses, recent, resolve, views, lateGitHub }
}

/**
 * The workflows' state on GitHub: re-enables those GitHub disabled for inactivity and keeps a public repository's
 * schedules alive. A failure is kept for the end of the run, so missed-run detection still happens.
 */
async function checkWorkflows(input: WatchInput, pass: Pass) {
  const { github, dryRun, log, now, settings } = input
  let workflows: WorkflowState[] = []
  let error: Error | undefined
  let ref: string | undefined
  if (github) {
    try {
      const [listed, repo] = await Promise.all([github.listWorkflows(), github.repository()])
      ref = repo.defaultBranch
      workflows = await reconcileWorkflows({
        client: github,
        workflows: listed,
        schedules: pass.schedules,
        dryRun,
        log,
      })
      const keptAt = (await input.state.get<Record<string, string>>('keptAlive')) ?? {}
      const kept = await keepWorkflowsAlive({
        client: github,
        visibility: repo.visibility,
        workflows: listed,
        // The shared runner's workflow ticks on its own schedule: the inactivity disable would stop it too.
        scheduledFiles: new Set(
          [...pass.all.map((s) => s.workflowFile), ...loadSharedRunners(settings.root).map((r) => r.workflowFile)].map(
            (f) => f.replace(/\\/g, '/'),
          ),
        ),
        keptAt,
        now,
        dryRun,
        log,
      })
      if (kept.length) await input.state.set('keptAlive', keptAt)
    } catch (err) {
      error = new Error(`could not read or repair workflow state: ${firstLine(toError(err))}`, { cause: err })
    }
  }
  return { workflows, byJob: new Map(workflows.map((w) => [w.job, w])), error, ref }
}

/** The job summary's table, one row per job. */
function createTable() {
  const rows: string[][] = [['job', 'state', 'last run', 'lateness p90', 'allowance', 'note']]
  const row = (v: JobView, state: string, note: string) =>
    rows.push([
      v.job,
      state,
      iso(v.lastStart),
      v.lateness.p90Ms === undefined ? '-' : formatMs(v.lateness.p90Ms),
      formatMs(v.lateness.allowanceMs),
      note,
    ])
  return { rows, row }
}

/**
 * Judges every job: a re-enabled or hand-disabled workflow and a paused job are settled here (with their row); the
 * others get a verdict, and those past their allowance a catch-up. An unreadable schedule is kept for the end.
 */
async function judgeAll(
  input: WatchInput,
  pass: Pass,
  github: WorkflowCheck,
  stats: Stats,
  table: ReturnType<typeof createTable>,
) {
  const { sql, dryRun, now, settings } = input
  const rules = {
    ...defaultVerdictRules,
    dispatchStartMs: settings.dispatchStartMs,
    canDispatch: !!input.github && !github.error,
  }
  const githubLate = pass.lateGitHub !== undefined
  const catchUps: { view: JobView; verdict: Verdict }[] = []
  const judged: { view: JobView; verdict: Verdict }[] = []
  const scheduleErrors: string[] = []
  for (const view of pass.views) {
    const { job, schedule } = view
    stats.checked++
    const workflow = github.byJob.get(job)
    const disabledKey = `watchdog:disabled:${schedule.workflowFile}`
    if (workflow?.action === 'reenabled') {
      stats.reenabled++
      if (!dryRun) {
        await sql`
          insert into jobs.watchdog_actions (workflow, job, action, detail)
          values (${schedule.workflowFile}, ${job}, 'reenabled', 'catch-up dispatched')`
      }
      await input.alert({
        severity: 'warning',
        title: `${schedule.workflowFile} was disabled by GitHub for inactivity`,
        text: `The watchdog re-enabled it and dispatched a catch-up run of ${job}.`,
        fields: { job, workflow: schedule.workflowFile },
      })
      catchUps.push({ view, verdict: { kind: 'on-time' } })
      table.row(view, 're-enabled', 'catch-up dispatched')
      continue
    }
    if (workflow?.action === 'left-alone') {
      stats.disabledManually++
      await input.alert({
        severity: 'warning',
        title: `${schedule.workflowFile} is ${workflow.state.replace('_', ' ')}`,
        text: `${job} does not run on schedule. The watchdog leaves a workflow disabled by hand alone; enable it in the Actions tab to resume.`,
        fields: { job, workflow: schedule.workflowFile, state: workflow.state },
        dedupeKey: disabledKey,
      })
      table.row(view, workflow.state, 'left alone')
      continue
    }
    if (workflow?.state === 'active')
      await pass.resolve(disabledKey, {
        title: `${schedule.workflowFile} is enabled again`,
        text: `${job} runs on its schedule again.`,
      })
    const pause = pauseFor(job, pass.pauses, pass.infos.get(job)?.exemptFromPauseAll !== undefined)
    if (pause) {
      // Paused jobs are quiet: neither alerts nor recoveries until the pause ends.
      stats.paused++
      table.row(view, 'paused', `until ${iso(pause.until)}: ${pause.reason}`)
      continue
    }
    let verdict: Verdict
    try {
      verdict = judge(view, now, rules, { githubLate })
      if (verdict.kind === 'late' && input.github && workflow?.id !== undefined) {
        // Before a catch-up or a stop: did GitHub run it without it reaching the database?
        const githubRuns = await input.github.listWorkflowRuns(workflow.id, { perPage: 10 }).catch(() => undefined)
        if (githubRuns) verdict = judge(view, now, rules, { githubLate, githubRuns })
      }
    } catch (err) {
      // A cron or timezone croner cannot read: check the other jobs, then fail the run naming the workflow.
      scheduleErrors.push(`${schedule.workflowFile}: ${firstLine(toError(err))}`)
      table.row(view, 'unreadable schedule', schedule.cron.join(', '))
      continue
    }
    if (verdict.kind === 'late' && verdict.action === 'catch-up') catchUps.push({ view, verdict })
    judged.push({ view, verdict })
  }
  return { catchUps, judged, scheduleErrors }
}

/** Alerts on a job whose newest runs all failed (critical for a critical job), or resolves the streak's incident. */
async function reportFailing(input: WatchInput, view: JobView, pass: Pass, stats: Stats) {
  const failing = checkFailing(view.job, pass.recent.get(view.job) ?? [], input.settings.failureThreshold)
  const key = `watchdog:failing:${view.job}`
  if (!failing) {
    await pass.resolve(key, { title: `${view.job} succeeds again`, text: `${view.job} is no longer failing.` })
    return undefined
  }
  stats.failing++
  await input.alert({
    severity: view.critical ? 'critical' : 'warning',
    title: `${view.job} keeps failing`,
    text: `The last ${failing.failures} runs of ${view.job} failed (since ${iso(failing.since)}). Latest error: ${failing.lastError ?? 'unknown'}`,
    fields: { job: view.job, failures: failing.failures, since: iso(failing.since) },
    dedupeKey: key,
  })
  return failing
}

/** One warning per episode of GitHub's cron running late: the incident continues while late, ends after 6 quiet hours. */
async function reportGitHubLate(input: WatchInput, late: Pass['lateGitHub']) {
  if (!late) return
  const worst = Math.max(...late.late.map((l) => l.behindMs))
  await input.alert({
    severity: 'warning',
    title: 'GitHub is running scheduled workflows late',
    text: `GitHub's cron is more than ${formatMs(input.settings.githubLateMs)} behind for ${late.late.length} of ${late.due} jobs due (up to ${formatMs(worst)}): ${late.late.map((l) => l.job).join(', ')}. Jobs are caught up by dispatch where a token allows; a job that does not start when dispatched is reported as stopped.`,
    fields: { behind: formatMs(worst), jobs: late.late.length },
    dedupeKey: 'watchdog:github-late',
    quietAfter: '6h',
  })
}

/** Sends the catch-up dispatches of jobs past their allowance (and of re-enabled workflows), each slot at most once. */
async function catchUp(
  input: WatchInput,
  catchUps: readonly { view: JobView }[],
  workflows: readonly WorkflowState[],
  ref: string | undefined,
): Promise<Map<string, DispatchResult>> {
  if (!input.github || catchUps.length === 0) return new Map()
  const slots = catchUps.flatMap(({ view }) => {
    const slot = slotAt(view.schedule, input.now)
    return slot ? [{ job: view.job, slot, workflowFile: view.schedule.workflowFile.replace(/\\/g, '/') }] : []
  })
  const results = await dispatchSlots({
    sql: input.sql,
    client: input.github,
    slots,
    by: 'watchdog',
    now: input.now,
    log: input.log,
    dryRun: input.dryRun,
    // A re-enabled workflow is active now, though the list said otherwise a moment ago.
    workflows: workflows.flatMap((w) =>
      w.id === undefined ? [] : [{ id: w.id, name: w.job, path: w.workflowFile, state: 'active' as const }],
    ),
    ref,
  })
  return new Map(results.map((r) => [r.job, r]))
}

async function report(
  input: WatchInput,
  view: JobView,
  verdict: Verdict,
  resolve: (key: string, notice: { title: string; text: string }) => Promise<void>,
  stats: { late: number; stopped: number; caughtUp: number },
): Promise<void> {
  const { job, schedule } = view
  const missedKey = `watchdog:missed:${job}`
  const stoppedKey = `watchdog:stopped:${job}`
  if (verdict.kind === 'stopped') {
    stats.stopped++
    await input.alert({
      severity: view.critical ? 'critical' : 'warning',
      title: `${job} has stopped running`,
      text: `${job} (${describeSchedule(schedule)}): ${verdict.reason}. Its last run started ${iso(view.lastStart)}.`,
      fields: {
        job,
        expected: iso(verdict.expectedAt),
        'last run': iso(view.lastStart),
        workflow: schedule.workflowFile,
      },
      dedupeKey: stoppedKey,
    })
    return
  }
  if (verdict.kind === 'late') {
    stats.late++
    if (verdict.action === 'catch-up') stats.caughtUp++
    if (verdict.action !== 'warn') return
    await input.alert({
      severity: 'warning',
      title: `${job} missed its scheduled run`,
      text: `${job} should have started at ${iso(verdict.expectedAt)} (${describeSchedule(schedule)}); its last run started ${iso(view.lastStart)}.`,
      fields: {
        job,
        expected: iso(verdict.expectedAt),
        'last run': iso(view.lastStart),
        allowance: formatMs(view.lateness.allowanceMs),
        workflow: schedule.workflowFile,
      },
      dedupeKey: missedKey,
    })
    return
  }
  const notice = { title: `${job} runs on schedule again`, text: `${job} started at ${iso(view.lastStart)}.` }
  await resolve(missedKey, notice)
  await resolve(stoppedKey, notice)
}

function stateOf(verdict: Verdict): string {
  if (verdict.kind === 'late') return verdict.action === 'warn' ? 'missed' : 'late'
  return verdict.kind === 'stopped' ? 'stopped' : 'ok'
}

function noteOf(verdict: Verdict, dispatch: DispatchResult | undefined): string {
  if (verdict.kind === 'stopped') return verdict.reason
  if (verdict.kind === 'on-time') return ''
  const behind = `expected ${iso(verdict.expectedAt)}, ${formatMs(verdict.overdueMs)} ago`
  if (verdict.action === 'catch-up') return `${behind}; catch-up: ${dispatch?.outcome ?? 'not sent'}`
  if (verdict.action === 'dispatched') return `${behind}; dispatched, waiting for it to start`
  if (verdict.action === 'github-late') return `${behind}; GitHub is running late`
  return behind
}

function maxDate(a: Date | undefined, b: Date | undefined): Date | undefined {
  return a && b ? (b > a ? b : a) : (a ?? b)
}
