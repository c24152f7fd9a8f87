import fs from 'node:fs'
import path from 'node:path'
import { ConfigError, type EnvReader, firstLine, formatMs, type JobContext, toError } from '@admin-jobs/sdk'
import {
  activePauses,
  checkFailing,
  checkMissed,
  closeStaleRuns,
  createGitHubClient,
  describeSchedule,
  lastPauseEnd,
  latestRuns,
  loadJobInfos,
  loadSchedules,
  pauseEnds,
  pauseFor,
  recentFinishedRuns,
  repoRoot,
} from '@admin-jobs/sdk/platform'
import { reconcileWorkflows, type WorkflowState } from './workflows.ts'

/** The watchdog's own settings. */
export interface WatchdogSettings {
  /** Repository root whose `.github/workflows` and `scripts` are read (ADMIN_JOBS_ROOT, default: this checkout). */
  root: string
  /** WATCHDOG_GRACE: one grace for every job instead of the default (30m, or two intervals when sub-hourly). */
  graceMs: number | undefined
  /** WATCHDOG_FAILURE_THRESHOLD: consecutive failed runs that make a job "keeps failing" (default 3). */
  failureThreshold: number
}

/** Reads the watchdog's settings (ADMIN_JOBS_ROOT, WATCHDOG_GRACE, WATCHDOG_FAILURE_THRESHOLD). */
export function watchdogSettings(read: EnvReader): WatchdogSettings {
  const root = path.resolve(read.string('ADMIN_JOBS_ROOT', repoRoot()))
  if (!fs.existsSync(path.join(root, '.github', 'workflows')))
    throw new ConfigError(`ADMIN_JOBS_ROOT has no .github/workflows (got "${root}")`, { variable: 'ADMIN_JOBS_ROOT' })
  return {
    root,
    graceMs: read.string('WATCHDOG_GRACE') === undefined ? undefined : read.duration('WATCHDOG_GRACE', 0),
    failureThreshold: read.integer('WATCHDOG_FAILURE_THRESHOLD', 3, { min: 1, max: 100 }),
  }
}

const iso = (d: Date | undefined) => (d ? `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC` : 'never')

/** The watchdog run: missed runs, failure streaks and workflow state, each alerted once and resolved once. */
export async function watch(ctx: JobContext<WatchdogSettings>) {
  const { sql, log, settings, dryRun } = ctx
  const now = ctx.now()
  const schedules = loadSchedules(settings.root).filter((s) => s.job !== ctx.job && s.cron.length > 0)
  const infos = new Map((await loadJobInfos(settings.root)).map((j) => [j.id, j]))

  const staleClosed = dryRun ? [] : await closeStaleRuns(sql)
  if (staleClosed.length) log.warn('closed runs whose process stopped beating', { runs: staleClosed.join(',') })

  // Fire times from before the watchdog first saw a job are not expected (new jobs, first deployment).
  const firstSeen = (await ctx.state.get<Record<string, string>>('firstSeen')) ?? {}
  for (const s of schedules) firstSeen[s.job] ??= now.toISOString()
  await ctx.state.set('firstSeen', firstSeen)

  const [pauses, ends, latest, recent] = await Promise.all([
    activePauses(sql),
    pauseEnds(sql),
    latestRuns(sql),
    recentFinishedRuns(sql, settings.failureThreshold),
  ])

  let workflows: WorkflowState[] = []
  let githubError: Error | undefined
  const { token, repository, apiUrl } = ctx.config.github
  if (token && repository) {
    try {
      const client = createGitHubClient({ token, repository, apiUrl, signal: ctx.signal, log })
      workflows = await reconcileWorkflows({ client, schedules, dryRun, log })
    } catch (err) {
      // Missed-run detection must still happen; the error fails the run once the checks are done.
      githubError = new Error(`could not read or repair workflow state: ${firstLine(toError(err))}`, { cause: err })
    }
  } else {
    log.info('GITHUB_TOKEN or GITHUB_REPOSITORY unset: workflow state not checked')
  }
  const workflowOf = new Map(workflows.map((w) => [w.job, w]))

  const stats = { checked: 0, missed: 0, failing: 0, paused: 0, reenabled: 0, disabledManually: 0 }
  const rows: string[][] = [['job', 'state', 'last run', 'note']]
  const scheduleErrors: string[] = []
  for (const schedule of schedules) {
    const { job } = schedule
    stats.checked++
    const critical = infos.get(job)?.critical === true
    const exempt = infos.get(job)?.exemptFromPauseAll !== undefined
    const workflow = workflowOf.get(job)
    const disabledKey = `watchdog:disabled:${schedule.workflowFile}`
    if (workflow?.action === 'reenabled') {
      stats.reenabled++
      if (!dryRun) {
        await sql`
          insert into jobs.watchdog_actions (workflow, job, action, detail)
          values (${schedule.workflowFile}, ${job}, 'reenabled', ${`catch-up dispatched on ${workflow.ref}`})`
      }
      await ctx.alert({
        severity: 'warning',
        title: `${schedule.workflowFile} was disabled by GitHub for inactivity`,
        text: `The watchdog re-enabled it and dispatched a catch-up run of ${job} on ${workflow.ref}.`,
        fields: { job, workflow: schedule.workflowFile },
      })
      rows.push([job, 're-enabled', iso(latest.get(job)), `catch-up dispatched on ${workflow.ref}`])
      continue
    }
    if (workflow?.action === 'left-alone') {
      stats.disabledManually++
      await ctx.alert({
        severity: 'warning',
        title: `${schedule.workflowFile} is ${workflow.state.replace('_', ' ')}`,
        text: `${job} does not run on schedule. The watchdog leaves a workflow disabled by hand alone; enable it in the Actions tab to resume.`,
        fields: { job, workflow: schedule.workflowFile, state: workflow.state },
        dedupeKey: disabledKey,
      })
      rows.push([job, workflow.state, iso(latest.get(job)), 'left alone'])
      continue
    }
    if (workflow?.state === 'active') {
      await ctx.resolveAlert(disabledKey, {
        title: `${schedule.workflowFile} is enabled again`,
        text: `${job} runs on its schedule again.`,
      })
    }
    const pause = pauseFor(job, pauses, exempt)
    if (pause) {
      // Paused jobs are quiet: neither alerts nor recoveries until the pause ends.
      stats.paused++
      rows.push([job, 'paused', iso(latest.get(job)), `until ${iso(pause.until)}: ${pause.reason}`])
      continue
    }

    const lastRunAt = latest.get(job)
    // A job with history is judged from its last run; one without, from when the watchdog first saw it.
    const watchFrom = maxDate(lastRunAt ? undefined : new Date(firstSeen[job]!), lastPauseEnd(job, ends, exempt))
    let missed: ReturnType<typeof checkMissed>
    try {
      missed = checkMissed({ job, schedule, lastRunAt, now, watchFrom, graceMs: settings.graceMs })
    } catch (err) {
      // A cron or timezone croner cannot read: check the other jobs, then fail the run naming the workflow.
      scheduleErrors.push(`${schedule.workflowFile}: ${firstLine(toError(err))}`)
      rows.push([job, 'unreadable schedule', iso(lastRunAt), schedule.cron.join(', ')])
      continue
    }
    const missedKey = `watchdog:missed:${job}`
    if (missed) {
      stats.missed++
      await ctx.alert({
        severity: critical ? 'critical' : 'warning',
        title: `${job} missed its scheduled run`,
        text: `${job} should have started at ${iso(missed.expectedAt)} (${describeSchedule(schedule)}); its last run started ${iso(lastRunAt)}.`,
        fields: {
          job,
          expected: iso(missed.expectedAt),
          'last run': iso(lastRunAt),
          grace: formatMs(missed.graceMs),
          workflow: schedule.workflowFile,
        },
        dedupeKey: missedKey,
      })
    } else {
      await ctx.resolveAlert(missedKey, {
        title: `${job} runs on schedule again`,
        text: `${job} started at ${iso(lastRunAt)}.`,
      })
    }

    const failing = checkFailing(job, recent.get(job) ?? [], settings.failureThreshold)
    const failingKey = `watchdog:failing:${job}`
    if (failing) {
      stats.failing++
      await ctx.alert({
        severity: critical ? 'critical' : 'warning',
        title: `${job} keeps failing`,
        text: `The last ${failing.failures} runs of ${job} failed (since ${iso(failing.since)}). Latest error: ${failing.lastError ?? 'unknown'}`,
        fields: { job, failures: failing.failures, since: iso(failing.since) },
        dedupeKey: failingKey,
      })
    } else {
      await ctx.resolveAlert(failingKey, { title: `${job} succeeds again`, text: `${job} is no longer failing.` })
    }
    rows.push([
      job,
      missed ? 'missed' : failing ? 'failing' : 'ok',
      iso(lastRunAt),
      missed ? `expected ${iso(missed.expectedAt)}` : failing ? `${failing.failures} failures in a row` : '',
    ])
  }
  ctx.summary.table(rows)
  log.info('watchdog checked every scheduled job', stats)
  if (githubError) throw githubError
  if (scheduleErrors.length) throw new Error(`cannot read schedules: ${scheduleErrors.join('; ')}`)
  return { ...stats, staleClosed: staleClosed.length }
}

function maxDate(a: Date | undefined, b: Date | undefined): Date | undefined {
  return a && b ? (b > a ? b : a) : (a ?? b)
}
