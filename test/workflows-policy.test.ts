import fs from 'node:fs'
import path from 'node:path'
import { type Duration, toMs } from '@admin-jobs/sdk'
import {
  decideRetry,
  describeDuplicate,
  duplicateWorkflows,
  listJobIds,
  loadJob,
  loadSchedules,
  retryableWorkflows,
  retryDelayLimitSeconds,
} from '@admin-jobs/sdk/platform'
import { Cron } from 'croner'
import { describe, expect, test } from 'vitest'
import { type DocumentedSchedule, documentedJobs, parseScheduleWords, readJobsTable } from './support/reference.ts'
import { root } from './support/run.ts'
import { lintFindings, parserErrors, unpinned } from './support/workflow-checks.ts'
import {
  allSteps,
  condition,
  evaluate,
  loadActions,
  loadWorkflows,
  localParts,
  scheduleOf,
  type WorkflowFile,
} from './support/workflows.ts'

const workflows = loadWorkflows()
const jobWorkflows = workflows.filter((w) => w.job)
const actions = loadActions()
const documented = documentedJobs()

/** Write permissions granted beyond read-only, per workflow (by file name or job id), each with its reason. */
const writeGrants: Record<string, Record<string, 'write'>> = {
  'retry.yml': { actions: 'write' }, // POST rerun-failed-jobs
  'monitoring/watchdog': { actions: 'write' }, // re-enables workflows disabled for inactivity, dispatches catch-up runs
  'frequent.yml': { actions: 'write' }, // the shared runner runs the watchdog as one of its steps
}
const readScopes = new Set(['contents', 'actions'])

/** Every job's `runs-on`: the repository variable ADMIN_JOBS_RUNNER (a label, or a JSON array of labels), else ubuntu-latest. */
const runnerExpression = `\${{ startsWith(vars.ADMIN_JOBS_RUNNER, '[') && fromJSON(vars.ADMIN_JOBS_RUNNER) || vars.ADMIN_JOBS_RUNNER || 'ubuntu-latest' }}`

/**
 * Workflows that still hard-code their runner and keep the checkout token: backups-database.yml moves to both rules
 * with its artifact changes. A test below fails once a listed workflow follows the rules, so the list only shrinks.
 */
const notYetOnRunnerRules = new Set<string>()

/** Jobs whose `runs-on` is not the runner variable, and checkouts that leave the token in `.git/config`. */
function runnerProblems(doc: Record<string, any>): string[] {
  const problems: string[] = []
  for (const [id, job] of Object.entries<any>(doc.jobs ?? {})) {
    if (job?.['runs-on'] !== runnerExpression) problems.push(`job ${id}: runs-on ${JSON.stringify(job?.['runs-on'])}`)
    for (const step of Array.isArray(job?.steps) ? job.steps : []) {
      if (
        typeof step?.uses === 'string' &&
        step.uses.startsWith('actions/checkout@') &&
        step.with?.['persist-credentials'] !== false
      )
        problems.push(`job ${id}: ${step.uses.split('@')[0]} without persist-credentials: false`)
    }
  }
  return problems
}

// ---- the checks, as functions so that each one is also shown to catch a bad workflow ----

/** Permissions broader than the workflow needs: missing block, write-all/read-all, unknown scopes, ungranted writes. */
function permissionProblems(w: Pick<WorkflowFile, 'file' | 'job' | 'doc'>): string[] {
  const problems: string[] = []
  const grants = writeGrants[w.file] ?? (w.job ? writeGrants[w.job] : undefined) ?? {}
  const check = (where: string, permissions: unknown) => {
    if (typeof permissions === 'string')
      return problems.push(`${where}: permissions: ${permissions} grants every scope`)
    if (!permissions || typeof permissions !== 'object') return problems.push(`${where}: no permissions declared`)
    for (const [scope, level] of Object.entries(permissions)) {
      if (level === 'none') continue
      if (level === 'write' && grants[scope] === 'write') continue
      if (level === 'read' && (readScopes.has(scope) || grants[scope])) continue
      problems.push(`${where}: ${scope}: ${String(level)} is not needed`)
    }
  }
  const jobs = Object.entries<any>(w.doc.jobs ?? {})
  if (w.doc.permissions !== undefined) check('workflow', w.doc.permissions)
  for (const [id, job] of jobs) {
    if (job?.permissions !== undefined) check(`job ${id}`, job.permissions)
    else if (w.doc.permissions === undefined)
      problems.push(`job ${id}: no permissions declared (defaults may be write)`)
  }
  return problems
}

/** `run:` scripts containing `${{ }}`: an expression there is pasted into the shell before it runs (injection). */
function expressionsInRun(doc: Record<string, any>): string[] {
  return allSteps(doc)
    .filter((s) => typeof s.run === 'string' && /\$\{\{/.test(s.run))
    .map((s) => `${s.name ?? s.run!.split('\n')[0]}: ${/\$\{\{[^}]*\}\}/.exec(s.run!)?.[0]}`)
}

function fireTimes(schedule: { cron: string; timezone?: string }[], count: number, from: Date): Date[] {
  return schedule
    .flatMap((s) => new Cron(s.cron, { timezone: s.timezone, paused: true, mode: '5-part' }).nextRuns(count, from))
    .sort((a, b) => a.getTime() - b.getTime())
}

/** How a workflow's schedule departs from a documented default schedule (empty when it matches). */
function scheduleProblems(schedule: { cron: string; timezone?: string }[], expected: DocumentedSchedule): string[] {
  const tz = schedule[0]?.timezone ?? 'UTC'
  const from = new Date('2026-01-01T00:00:00Z')
  const times = fireTimes(schedule, 400, from)
  const problems: string[] = []
  const dateKey = (d: Date) => new Intl.DateTimeFormat('en-CA', { timeZone: tz }).format(d)
  if ('every' in expected) {
    const gaps = new Set(times.slice(1).map((t, i) => (t.getTime() - times[i]!.getTime()) / 60_000))
    if (gaps.size !== 1 || !gaps.has(expected.every))
      problems.push(`expected a run every ${expected.every} min, got gaps of ${[...gaps].join(', ')} min`)
  } else if ('daily' in expected) {
    const days = times.slice(0, 60)
    if (new Set(days.map(dateKey)).size !== days.length) problems.push('expected one run a day, got several on a day')
    if (days[59]!.getTime() - days[0]!.getTime() > 61 * 86_400_000) problems.push('expected a run every day')
    const hours = new Set(days.map((d) => localParts(d, tz).hour))
    if (expected.hour !== undefined && (hours.size !== 1 || !hours.has(expected.hour)))
      problems.push(`expected the run in hour ${expected.hour} (${tz}), got hours ${[...hours].join(', ')}`)
  } else if ('weekly' in expected) {
    const weeks = times.slice(0, 10)
    if (weeks.some((d) => localParts(d, tz).weekday !== expected.weekly || localParts(d, tz).hour !== expected.hour))
      problems.push(`expected weekly on day ${expected.weekly} at hour ${expected.hour} (${tz})`)
    if (weeks.some((d, i) => i > 0 && d.getTime() - weeks[i - 1]!.getTime() < 6 * 86_400_000))
      problems.push('expected one run a week')
  } else {
    const months = times.slice(0, 12)
    if (months.some((d) => localParts(d, tz).day !== expected.monthly))
      problems.push(`expected monthly on day ${expected.monthly} (${tz})`)
    if (new Set(months.map((d) => dateKey(d).slice(0, 7))).size !== 12) problems.push('expected one run a month')
  }
  return problems
}

/** The smallest gap between two runs of the schedule, in minutes (Infinity with fewer than two runs). */
function minimumGapMinutes(schedule: { cron: string; timezone?: string }[]): number {
  const times = fireTimes(schedule, 300, new Date('2026-03-01T00:00:00Z'))
  return Math.min(...times.slice(1).map((t, i) => (t.getTime() - times[i]!.getTime()) / 60_000))
}

// ---- every workflow and composite action ----

describe.each(workflows.map((w) => [w.file, w] as const))('%s', (_file, w) => {
  test('parses with GitHub’s workflow parser without errors', async () => {
    expect(await parserErrors(w.path, w.text)).toEqual([])
  })

  test('passes actionlint', async () => {
    expect(await lintFindings(w.path, w.text)).toEqual([])
  })

  test('pins every action to a full commit SHA with a version comment', () => {
    expect(unpinned(w.text)).toEqual([])
  })

  test('declares least-privilege permissions', () => {
    expect(permissionProblems(w)).toEqual([])
  })

  test('keeps GitHub expressions out of every run: script', () => {
    expect(expressionsInRun(w.doc)).toEqual([])
  })

  test.skipIf(notYetOnRunnerRules.has(w.file))(
    'runs every job on the ADMIN_JOBS_RUNNER runner and checks out without keeping the token in .git/config',
    () => {
      expect(runnerProblems(w.doc)).toEqual([])
    },
  )

  test.skipIf(notYetOnRunnerRules.has(w.file) || !w.text.includes('secrets.DATABASE_URL'))(
    'passes the DATABASE_CA_CERT secret to its setup step, which writes it for PGSSLROOTCERT',
    () => {
      const setups = allSteps(w.doc).filter((s) => s.uses === './.github/actions/setup')
      expect(setups.length).toBeGreaterThan(0)
      for (const s of setups) expect(s.env?.DATABASE_CA_CERT).toBe(`\${{ secrets.DATABASE_CA_CERT }}`)
    },
  )

  test('gives every job a timeout', () => {
    const missing = Object.entries<any>(w.doc.jobs ?? {}).filter(
      ([, job]) => typeof job?.['timeout-minutes'] !== 'number',
    )
    expect(missing.map(([id]) => id)).toEqual([])
  })
})

describe.each(actions.map((a) => [a.path, a] as const))('%s', (_path, a) => {
  test('pins every action to a full commit SHA and keeps expressions out of run:', () => {
    expect(unpinned(a.text)).toEqual([])
    expect(expressionsInRun(a.doc)).toEqual([])
  })

  test('leaves the pnpm version to package.json’s packageManager (pnpm/action-setup v4 fails on two versions)', () => {
    const packageJson = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
    const pnpmSteps = allSteps(a.doc).filter((s) => s.uses?.startsWith('pnpm/action-setup@'))
    if (packageJson.packageManager) for (const s of pnpmSteps) expect(s.with?.version).toBeUndefined()
  })

  test('installs from the lockfile only', () => {
    const installs = allSteps(a.doc).filter((s) => /\bpnpm install\b/.test(s.run ?? ''))
    for (const s of installs) expect(s.run).toContain('--frozen-lockfile')
  })
})

describe('the setup action', () => {
  const setup = actions.find((a) => a.path === path.join('.github', 'actions', 'setup', 'action.yml'))!
  const steps = allSteps(setup.doc)
  const cache = steps.find((s) => s.uses?.startsWith('actions/cache@'))
  const install = steps.find((s) => /\bpnpm install\b/.test(s.run ?? ''))

  test('restores node_modules keyed on the lockfile, the Node version, the OS and the architecture', () => {
    expect(cache, 'an actions/cache step').toBeDefined()
    expect(String(cache!.with?.path).split('\n').filter(Boolean)).toEqual(['node_modules', 'sdk/node_modules'])
    const key = String(cache!.with?.key)
    for (const part of ["hashFiles('pnpm-lock.yaml'", 'runner.os', 'runner.arch', 'steps.node.outputs.node-version'])
      expect(key).toContain(part)
    // Only an exact key: a restore-keys prefix would bring back a node_modules of another lockfile.
    expect(cache!.with?.['restore-keys']).toBeUndefined()
    expect(steps.find((s) => s.uses?.startsWith('actions/setup-node@'))).toMatchObject({ id: 'node' })
  })

  test('skips pnpm install on an exact cache hit and installs on a miss', () => {
    const ctx = (hit: string) => ({ steps: { [cache!.id ?? '']: { outputs: { 'cache-hit': hit } } } })
    expect(condition(install!.if, ctx('true'), 'success')).toBe(false)
    expect(condition(install!.if, ctx('false'), 'success')).toBe(true)
    expect(condition(install!.if, ctx(''), 'success')).toBe(true)
  })
})

// ---- job workflows ----

describe.each(jobWorkflows.map((w) => [w.job!, w] as const))('the workflow of %s', (job, w) => {
  const on = w.doc.on ?? {}
  const steps = allSteps(w.doc)

  test('is named after its job (retry.yml and the CLI find it by that name)', () => {
    expect(w.doc.name).toBe(job)
  })

  test('runs an existing script', () => {
    expect(fs.existsSync(path.join(root, 'scripts', `${job}.ts`))).toBe(true)
  })

  test('runs on a cron schedule and by hand with a boolean dry_run input passed through env', () => {
    expect(scheduleOf(w.doc).length).toBeGreaterThan(0)
    expect(on.workflow_dispatch?.inputs?.dry_run?.type).toBe('boolean')
    const runStep = steps.find((s) => s.run?.includes(`scripts/${job}.ts`))!
    const dryRun = runStep.env?.DRY_RUN ?? w.doc.env?.DRY_RUN ?? Object.values<any>(w.doc.jobs)[0]?.env?.DRY_RUN
    expect(dryRun).toMatch(/\$\{\{\s*inputs\.dry_run\b/)
  })

  test('takes the slot a dispatcher names as a string input, passed to the job as ADMIN_JOBS_SLOT', () => {
    expect(on.workflow_dispatch?.inputs?.slot?.type).toBe('string')
    const runStep = steps.find((s) => s.run?.includes(`scripts/${job}.ts`))!
    expect(runStep.env?.ADMIN_JOBS_SLOT).toMatch(/^\$\{\{\s*inputs\.slot\s*\}\}$/)
  })

  test('offers a workflow_dispatch input for --force and --period when the job takes them', async () => {
    const definition = await loadJob(job)
    const inputs = on.workflow_dispatch?.inputs ?? {}
    // Operator flags such as --force and --period must be reachable from the Actions UI; tuning flags may stay CLI-only.
    const operatorFlags = Object.entries(definition.flags ?? {}).filter(([flag]) => ['force', 'period'].includes(flag))
    for (const [flag, kind] of operatorFlags) {
      const input = inputs[flag.replace(/-/g, '_')]
      expect(input, `input ${flag.replace(/-/g, '_')} for --${flag}`).toBeDefined()
      if (kind === 'boolean') expect(input.type).toBe('boolean')
    }
  })

  test('never cancels a run in progress and never overlaps itself', () => {
    const concurrency = w.doc.concurrency
    expect(concurrency?.['cancel-in-progress']).toBe(false)
    expect(String(concurrency?.group)).toContain(job.replace('/', '-'))
  })

  test('has a timeout a little above the job’s own', async () => {
    const definition = await loadJob(job)
    const jobMinutes = toMs(definition.timeout ?? '15m') / 60_000
    for (const [id, j] of Object.entries<any>(w.doc.jobs)) {
      expect(j['timeout-minutes'], `job ${id}`).toBeGreaterThan(jobMinutes)
      expect(j['timeout-minutes'], `job ${id}`).toBeLessThanOrEqual(jobMinutes + 30)
    }
  })

  test('has valid crons at least 5 minutes apart', () => {
    for (const entry of scheduleOf(w.doc)) {
      expect(() => new Cron(entry.cron, { timezone: entry.timezone, paused: true, mode: '5-part' })).not.toThrow()
      expect(entry.cron.trim().split(/\s+/)).toHaveLength(5)
    }
    expect(minimumGapMinutes(scheduleOf(w.doc))).toBeGreaterThanOrEqual(5)
  })

  test('keeps hourly and slower schedules off the top of the hour', () => {
    const schedule = scheduleOf(w.doc)
    if (minimumGapMinutes(schedule) < 60) return
    const times = fireTimes(schedule, 50, new Date('2026-01-01T00:00:00Z'))
    expect(times.filter((t) => t.getUTCMinutes() === 0).map((t) => t.toISOString())).toEqual([])
  })

  test('passes secrets only through env:', () => {
    for (const step of steps) {
      expect(JSON.stringify(step.with ?? {}), step.name ?? step.uses).not.toMatch(/secrets\./)
    }
  })

  test('uploads what the job writes as an artifact, when the job writes files', () => {
    if (!/^(reports\/|cleanup\/audit-logs$|backups\/database$)/.test(job)) return
    expect(steps.some((s) => s.uses?.startsWith('actions/upload-artifact@'))).toBe(true)
  })
})

// ---- the set as a whole ----

describe('the workflow set', () => {
  test('has one workflow for every job in scripts/, and every job workflow runs a job that exists', () => {
    const byJob = new Map<string, string[]>()
    for (const w of jobWorkflows) byJob.set(w.job!, [...(byJob.get(w.job!) ?? []), w.file])
    const jobs = listJobIds()
    expect(jobs.filter((j) => !byJob.has(j)).map((j) => `${j} has no workflow`)).toEqual([])
    expect([...byJob].filter(([, files]) => files.length > 1).map(([j, f]) => `${j}: ${f.join(', ')}`)).toEqual([])
    expect([...byJob.keys()].filter((j) => !jobs.includes(j)).map((j) => `${j} has no script`)).toEqual([])
  })

  test('runs each job script from one workflow only (a copied workflow must run its own script)', () => {
    expect(duplicateWorkflows(loadSchedules(root)).map(describeDuplicate)).toEqual([])
  })

  test('names both workflows when a copy still runs the script it was copied from', () => {
    const schedule = (file: string) => ({
      job: 'cleanup/sessions',
      workflowFile: `.github/workflows/${file}`,
      workflowName: 'cleanup/sessions',
      cron: [],
      timezone: undefined,
      entries: [],
    })
    expect(
      duplicateWorkflows([schedule('cleanup-sessions.yml'), schedule('cleanup-carts.yml')]).map(describeDuplicate),
    ).toEqual([
      'error: .github/workflows/cleanup-sessions.yml and .github/workflows/cleanup-carts.yml both run scripts/cleanup/sessions.ts; a job has exactly one workflow (a copied workflow must run its own script)',
    ])
  })
})

// ---- the jobs table of docs/reference.md: every job it lists is as it says ----

describe('the jobs table of docs/reference.md', () => {
  test('lists jobs the checks can read', () => {
    expect(documented.size).toBeGreaterThan(0)
  })
})

describe.each([...documented.values()].map((d) => [d.id, d] as const))('%s, as docs/reference.md lists it', (id, d) => {
  test('is a job under scripts/, at the script named', () => {
    expect(listJobIds()).toContain(id)
    expect(d.script).toBe(`scripts/${id}.ts`)
  })

  test('has the workflow named, which runs it on the documented default schedule', () => {
    const workflow = jobWorkflows.find((w) => w.path === d.workflow)
    expect(workflow, `${d.workflow} does not exist or runs no job`).toBeDefined()
    expect(workflow!.job).toBe(id)
    expect(scheduleProblems(scheduleOf(workflow!.doc), d.schedule), `"${d.words}"`).toEqual([])
  })

  test('is critical, and has the timeout, that its definition gives', async () => {
    const definition = await loadJob(id)
    expect(definition.critical === true, 'critical').toBe(d.critical)
    expect(toMs(definition.timeout ?? '15m'), 'timeout').toBe(toMs(d.timeout as Duration))
  })
})

describe('the runner rules', () => {
  test('name only workflows that still break them', () => {
    const listed = workflows.filter((w) => notYetOnRunnerRules.has(w.file))
    expect(listed.filter((w) => runnerProblems(w.doc).length === 0).map((w) => w.file)).toEqual([])
  })

  test('choose ubuntu-latest by default, a label, or a JSON array of self-hosted labels', () => {
    const runsOn = (value: string | undefined) => {
      const vars = value === undefined ? {} : { ADMIN_JOBS_RUNNER: value }
      const inner = runnerExpression.slice(3, -2)
      return JSON.parse(evaluate(`\${{ toJSON(${inner}) }}`, { vars }))
    }
    expect(runsOn(undefined)).toBe('ubuntu-latest')
    expect(runsOn('')).toBe('ubuntu-latest')
    expect(runsOn('ubuntu-24.04')).toBe('ubuntu-24.04')
    expect(runsOn('admin-jobs')).toBe('admin-jobs')
    expect(runsOn('["self-hosted", "linux", "db-network"]')).toEqual(['self-hosted', 'linux', 'db-network'])
  })

  test('catch a hard-coded runner and a checkout that keeps its token', () => {
    const doc = {
      jobs: {
        a: {
          'runs-on': 'ubuntu-latest',
          steps: [{ uses: 'actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683' }],
        },
        b: {
          'runs-on': runnerExpression,
          steps: [{ uses: 'actions/checkout@x', with: { 'persist-credentials': 'false' } }],
        },
      },
    }
    expect(runnerProblems(doc)).toEqual([
      'job a: runs-on "ubuntu-latest"',
      'job a: actions/checkout without persist-credentials: false',
      'job b: actions/checkout without persist-credentials: false',
    ])
  })
})

describe('retry.yml', () => {
  const retry = workflows.find((w) => w.file === 'retry.yml')!
  const listed = retryableWorkflows(retry.text)
  const job = Object.values<any>(retry.doc.jobs)[0]

  test('starts when a listed job workflow completes, on any branch, and starts a runner only on the default one', () => {
    expect(retry.doc.on.workflow_run.types).toEqual(['completed'])
    // A branches filter names the branch: a repository whose default branch is not main would never be retried.
    expect(retry.doc.on.workflow_run.branches).toBeUndefined()
    expect(listed.length).toBeGreaterThan(0)
    const event = (head_branch: string, default_branch: string, conclusion = 'failure') => ({
      github: { event: { workflow_run: { head_branch, conclusion }, repository: { default_branch } } },
    })
    expect(condition(job.if, event('trunk', 'trunk'), 'success')).toBe(true)
    expect(condition(job.if, event('main', 'main', 'timed_out'), 'success')).toBe(true)
    expect(condition(job.if, event('feature/x', 'trunk'), 'success')).toBe(false)
    expect(condition(job.if, event('trunk', 'trunk', 'success'), 'success')).toBe(false)
    expect(condition(job.if, event('trunk', 'trunk', 'cancelled'), 'success')).toBe(false)
  })

  test('waits at most retryDelayLimitSeconds, which leaves half of its job’s timeout for setup and the API call', () => {
    const timeoutSeconds = job['timeout-minutes'] * 60
    expect(retryDelayLimitSeconds * 2).toBeLessThanOrEqual(timeoutSeconds)
    const longest = Math.max(
      ...[1, 2].map((attempt) => {
        const decision = decideRetry(
          { workflow: listed[0]!, conclusion: 'failure', attempt, event: 'schedule', branch: 'main' },
          { retryable: listed, defaultBranch: 'main', delaySeconds: retryDelayLimitSeconds },
        )
        return decision.retry ? decision.delaySeconds : 0
      }),
    )
    expect(longest).toBe(retryDelayLimitSeconds)
  })

  test('lists only jobs under scripts/ whose workflows run hourly or less often', () => {
    const jobs = listJobIds()
    for (const name of listed) {
      expect(jobs, `${name} is not a job under scripts/`).toContain(name)
      const workflow = jobWorkflows.find((w) => w.job === name)
      expect(workflow, `${name} has no workflow`).toBeDefined()
      expect(minimumGapMinutes(scheduleOf(workflow!.doc)), name).toBeGreaterThanOrEqual(60)
    }
    const existing = jobWorkflows.filter((w) => listed.includes(w.job!))
    expect(existing.filter((w) => w.doc.name !== w.job).map((w) => w.file)).toEqual([])
  })

  test('holds actions: write and contents: read and nothing else', () => {
    expect(retry.doc.permissions).toEqual({ actions: 'write', contents: 'read' })
  })

  test('never checks out or runs the failed run’s code', () => {
    expect(JSON.stringify(retry.doc)).not.toMatch(/head_sha|head_commit|head_repository|pull_requests/)
    const checkouts = allSteps(retry.doc).filter((s) => s.uses?.startsWith('actions/checkout@'))
    for (const step of checkouts) {
      expect(step.with?.ref).toBe(`\${{ github.event.repository.default_branch }}`)
      expect(step.with?.['persist-credentials']).toBe(false)
    }
  })

  test('runs the tested decision function and skips runs that did not fail', () => {
    expect(job.if).toMatch(/conclusion == 'failure'/)
    expect(job.if).toMatch(/conclusion == 'timed_out'/)
    expect(allSteps(retry.doc).some((s) => s.run?.trim() === 'pnpm jobs retry')).toBe(true)
  })
})

describe('ci.yml', () => {
  const ci = workflows.find((w) => w.file === 'ci.yml')!
  const job = Object.values<any>(ci.doc.jobs)[0]
  const runs = allSteps(ci.doc).map((s) => s.run ?? '')

  test('runs on pull requests and on pushes to main', () => {
    expect(ci.doc.on).toHaveProperty('pull_request')
    expect(ci.doc.on.push.branches).toEqual(['main'])
  })

  test('installs, type-checks, lints and runs the tests and workflow checks against a Postgres service', () => {
    expect(allSteps(ci.doc).some((s) => s.uses === './.github/actions/setup')).toBe(true)
    expect(runs).toContain('pnpm typecheck')
    expect(runs).toContain('pnpm lint')
    expect(runs.some((r) => r.includes('test/workflows-'))).toBe(true)
    expect(runs.some((r) => /vitest run --exclude/.test(r))).toBe(true)
    expect(job.services.postgres.image).toMatch(/^postgres:\d+/)
    expect(job.env.TEST_DATABASE_URL).toMatch(/^postgres:\/\/.+@127\.0\.0\.1:5432\//)
  })
})

// ---- the checks catch what they claim to catch ----

describe('the checks themselves', () => {
  const bad = `name: bad
on:
  issues:
    types: [opened]
permissions: write-all
jobs:
  x:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@49933ea5288caeca8642d1e84afbd3f7d6820020
      - run: echo "\${{ github.event.issue.title }}"
`

  test('flag an untrusted expression, a tag-pinned action and write-all permissions', async () => {
    expect((await lintFindings('bad.yml', bad)).join('\n')).toMatch(/potentially untrusted/)
    expect(unpinned(bad)).toHaveLength(2)
    const doc = (await import('yaml')).parse(bad)
    expect(expressionsInRun(doc)).toHaveLength(1)
    expect(permissionProblems({ file: 'bad.yml', job: undefined, doc })).toEqual([
      'workflow: permissions: write-all grants every scope',
    ])
    expect(
      permissionProblems({ file: 'x.yml', job: 'reports/daily', doc: { ...doc, permissions: { actions: 'write' } } }),
    ).toEqual(['workflow: actions: write is not needed'])
  })

  test('flag a workflow GitHub’s parser rejects', async () => {
    expect(await parserErrors('bad.yml', 'name: x\non: push\njobs:\n  a:\n    steps: 3\n')).not.toEqual([])
  })

  test('forgive the timezone key but nothing else in a schedule entry', async () => {
    const base = '\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n'
    const withTz = `on:\n  schedule:\n    - cron: '7 3 * * *'\n      timezone: Europe/Berlin${base}`
    const withTypo = `on:\n  schedule:\n    - cron: '7 3 * * *'\n      timzone: Europe/Berlin${base}`
    expect(await lintFindings('tz.yml', withTz)).toEqual([])
    expect(await lintFindings('typo.yml', withTypo)).not.toEqual([])
  })

  test('read default schedules in the reference’s words and refuse words they do not know', () => {
    expect(parseScheduleWords('every 15 minutes')).toEqual({ every: 15 })
    expect(parseScheduleWords('every 6 hours')).toEqual({ every: 360 })
    expect(parseScheduleWords('daily')).toEqual({ daily: true })
    expect(parseScheduleWords('daily 03:00')).toEqual({ daily: true, hour: 3 })
    expect(parseScheduleWords('Sundays 02:00')).toEqual({ weekly: 0, hour: 2 })
    expect(parseScheduleWords('monthly, 1st')).toEqual({ monthly: 1 })
    expect(parseScheduleWords('1st of month')).toEqual({ monthly: 1 })
    expect(() => parseScheduleWords('twice a fortnight')).toThrow(/cannot read the schedule "twice a fortnight"/)
    expect(() => parseScheduleWords('Funday 02:00')).toThrow()
  })

  test('read the jobs table by its column names and refuse a row they cannot read', () => {
    const table = (row: string) =>
      `# x\n\n| critical | job id | script | workflow | default schedule | timeout |\n| - | - | - | - | - | - |\n${row}\n\nafter\n`
    const jobs = readJobsTable(table('| yes | a/b | scripts/a/b.ts | .github/workflows/a-b.yml | daily 04:00 | 5m |'))
    expect([...jobs.values()]).toEqual([
      {
        id: 'a/b',
        script: 'scripts/a/b.ts',
        workflow: '.github/workflows/a-b.yml',
        words: 'daily 04:00',
        schedule: { daily: true, hour: 4 },
        critical: true,
        timeout: '5m',
      },
    ])
    expect(() => readJobsTable(table('| maybe | a/b | s | w | daily | 5m |'))).toThrow(/a\/b has critical "maybe"/)
    expect(() => readJobsTable(table('| no | a/b | s | w | now and then | 5m |'))).toThrow(/a\/b: cannot read/)
    expect(() => readJobsTable('no table here')).toThrow(/has no jobs table/)
  })

  test('tell a schedule that matches its documented default from one that does not', () => {
    expect(scheduleProblems([{ cron: '7 */6 * * *' }], { every: 360 })).toEqual([])
    expect(scheduleProblems([{ cron: '7 */4 * * *' }], { every: 360 })).not.toEqual([])
    expect(scheduleProblems([{ cron: '5 3 * * *' }], { daily: true, hour: 3 })).toEqual([])
    expect(scheduleProblems([{ cron: '5 3 * * *', timezone: 'Europe/Berlin' }], { daily: true, hour: 3 })).toEqual([])
    expect(scheduleProblems([{ cron: '5 4 * * *' }], { daily: true, hour: 3 })).not.toEqual([])
    expect(scheduleProblems([{ cron: '12 2 * * 0' }], { weekly: 0, hour: 2 })).toEqual([])
    expect(scheduleProblems([{ cron: '12 2 * * 1' }], { weekly: 0, hour: 2 })).not.toEqual([])
    expect(scheduleProblems([{ cron: '30 4 1 * *' }], { monthly: 1 })).toEqual([])
    expect(scheduleProblems([{ cron: '30 4 2 * *' }], { monthly: 1 })).not.toEqual([])
    expect(minimumGapMinutes([{ cron: '*/5 * * * *' }])).toBe(5)
    expect(minimumGapMinutes([{ cron: '0 * * * *' }, { cron: '2 * * * *' }])).toBe(2)
  })
})
