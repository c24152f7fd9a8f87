import fs from 'node:fs'
import path from 'node:path'
import { Cron } from 'croner'
import { ConfigError } from '../runtime/errors.ts'
import { listJobIds } from './registry.ts'
import { repoRoot } from './root.ts'

/** What `pnpm jobs new` scaffolds: a job id, its schedule and whether a failure alerts. */
export interface NewJob {
  id: string
  /** A 5-field cron in UTC (default: daily at 04:MM, the minute taken from the id, off the top of the hour). */
  cron?: string
  critical?: boolean
}

/** The files scaffoldJob wrote, relative to the root. */
export interface ScaffoldedJob {
  id: string
  cron: string
  script: string
  workflow: string
  test: string
}

const idPattern = /^([a-z][a-z0-9]*(?:-[a-z0-9]+)*)\/([a-z][a-z0-9]*(?:-[a-z0-9]+)*)$/

/** Throws ConfigError unless `id` is `<area>/<job>` in lowercase words joined by hyphens (not `lib` or `index`). */
export function validateJobId(id: string): { area: string; name: string } {
  const match = idPattern.exec(id)
  if (!match)
    throw new ConfigError(
      `job id must be <area>/<job>, lowercase letters, digits and single hyphens, each starting with a letter (got "${id}")`,
    )
  const [, area, name] = match as unknown as [string, string, string]
  // lib/ holds an area's shared code and index.ts its exports: a job there would be neither.
  if (area === 'lib' || name === 'lib' || name === 'index')
    throw new ConfigError(`job id "${id}" uses a reserved name (lib, index)`)
  return { area, name }
}

/** The smallest gap in minutes between the next 500 fire times of `cron` (UTC). */
function minimumGapMinutes(cron: Cron): number {
  const times = cron.nextRuns(500, new Date('2026-03-01T00:00:00Z')).map((d) => d.getTime())
  if (times.length < 2) return Number.POSITIVE_INFINITY
  return Math.min(...times.slice(1).map((t, i) => (t - times[i]!) / 60_000))
}

/**
 * Throws ConfigError unless `expr` is a 5-field cron GitHub can run: valid, at least 5 minutes between runs (GitHub's
 * shortest interval), and, when hourly or slower, never at minute 0 (GitHub delays or drops top-of-hour runs).
 */
export function validateCron(expr: string): string {
  const cron = expr.trim().replace(/\s+/g, ' ')
  if (cron.split(' ').length !== 5)
    throw new ConfigError(`--cron must have 5 fields: minute hour day-of-month month day-of-week (got "${expr}")`)
  let parsed: Cron
  try {
    parsed = new Cron(cron, { paused: true, mode: '5-part', timezone: 'UTC' })
  } catch (err) {
    throw new ConfigError(`--cron is not a valid cron expression (got "${expr}"): ${(err as Error).message}`, {
      cause: err,
    })
  }
  if (!parsed.nextRun(new Date('2026-01-01T00:00:00Z'))) throw new ConfigError(`--cron never fires (got "${expr}")`)
  const gap = minimumGapMinutes(parsed)
  if (gap < 5)
    throw new ConfigError(`--cron fires every ${gap} minute(s); GitHub runs schedules at most every 5 minutes`)
  if (gap >= 60 && parsed.nextRuns(50, new Date('2026-01-01T00:00:00Z')).some((d) => d.getUTCMinutes() === 0)) {
    throw new ConfigError(
      `--cron fires at minute 0 (got "${expr}"): GitHub delays or drops top-of-the-hour runs; pick another minute, e.g. "${['17', ...cron.split(' ').slice(1)].join(' ')}"`,
    )
  }
  return cron
}

/** The default schedule of a new job: daily at 04:MM UTC, MM from the id (1–58), so new jobs spread out. */
export function defaultCron(id: string): string {
  let hash = 0
  for (const c of id) hash = (hash * 31 + c.charCodeAt(0)) >>> 0
  return `${1 + (hash % 58)} 4 * * *`
}

/**
 * Writes a new job: `scripts/<area>/<job>.ts` (defineJob), `.github/workflows/<area>-<job>.yml` (the conventions
 * every job workflow follows) and `test/<area>-<job>.test.ts` (runs it against a real database). Refuses, writing
 * nothing, when the id or cron is invalid, the job exists, or any of the three files does.
 */
export function scaffoldJob(input: NewJob, root = repoRoot()): ScaffoldedJob {
  const { area, name } = validateJobId(input.id)
  const cron = input.cron === undefined ? defaultCron(input.id) : validateCron(input.cron)
  const slug = `${area}-${name}`
  const files = {
    script: path.join('scripts', area, `${name}.ts`),
    workflow: path.join('.github', 'workflows', `${slug}.yml`),
    test: path.join('test', `${slug}.test.ts`),
  }
  if (listJobIds(root).includes(input.id)) throw new ConfigError(`job ${input.id} exists already (${files.script})`)
  const existing = Object.values(files).filter((f) => fs.existsSync(path.join(root, f)))
  if (existing.length) throw new ConfigError(`refusing to overwrite ${existing.join(', ')}`)
  const contents = {
    script: scriptText(input.id, input.critical === true),
    workflow: workflowText(input.id, slug, cron),
    test: testText(input.id, slug),
  }
  const written: string[] = []
  try {
    for (const key of ['script', 'workflow', 'test'] as const) {
      const file = path.join(root, files[key])
      fs.mkdirSync(path.dirname(file), { recursive: true })
      // `wx`: a file created meanwhile is never overwritten.
      fs.writeFileSync(file, contents[key], { flag: 'wx' })
      written.push(file)
    }
  } catch (err) {
    for (const file of written) fs.rmSync(file, { force: true })
    throw err
  }
  return { id: input.id, cron, ...files }
}

function scriptText(id: string, critical: boolean): string {
  return `import { defineJob } from '@admin-jobs/sdk'

// ${id}: what this job does, and why it runs on its schedule (.github/workflows/${id.replace('/', '-')}.yml).
export default defineJob({
  description: 'Describe what ${id} does',
  timeout: '15m',${critical ? '\n  critical: true,' : ''}
  async run({ sql, log, dryRun }) {
    // Replace with the job's work. A dry run reports what it would change and changes nothing.
    const [row] = await sql<{ jobs: number }[]>\`select count(distinct job)::int as jobs from jobs.runs\`
    log.info(dryRun ? 'dry run: would do nothing yet' : 'done', { jobs: row!.jobs })
    // What run returns becomes the run's stats.
    return { jobsWithHistory: row!.jobs }
  },
})
`
}

function workflowText(id: string, slug: string, cron: string): string {
  return `name: ${id}

on:
  schedule:
    - cron: "${cron}"
  workflow_dispatch:
    inputs:
      dry_run:
        description: Report what would change, change nothing
        type: boolean
        default: false
      slot:
        description: The schedule slot this run serves (pnpm jobs dispatch sets it; leave empty by hand)
        type: string
        default: ""

permissions:
  contents: read

concurrency:
  group: job-${slug}
  cancel-in-progress: false

jobs:
  run:
    runs-on: \${{ startsWith(vars.ADMIN_JOBS_RUNNER, '[') && fromJSON(vars.ADMIN_JOBS_RUNNER) || vars.ADMIN_JOBS_RUNNER || 'ubuntu-latest' }}
    timeout-minutes: 20
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          persist-credentials: false
      - uses: ./.github/actions/setup
        env:
          DATABASE_CA_CERT: \${{ secrets.DATABASE_CA_CERT }}
      - name: Run ${id}
        run: pnpm tsx scripts/${id}.ts
        env:
          DRY_RUN: \${{ inputs.dry_run || 'false' }}
          ADMIN_JOBS_SLOT: \${{ inputs.slot }}
          DATABASE_URL: \${{ secrets.DATABASE_URL }}
          SLACK_WEBHOOK_URL: \${{ secrets.SLACK_WEBHOOK_URL }}
          SMTP_URL: \${{ secrets.SMTP_URL }}
          ALERT_EMAIL_FROM: \${{ vars.ALERT_EMAIL_FROM }}
          ALERT_EMAIL_TO: \${{ vars.ALERT_EMAIL_TO }}
          HEARTBEAT_URL: \${{ secrets.HEARTBEAT_URL }}
`
}

function testText(id: string, slug: string): string {
  return `import { beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { runScript } from './support/run.ts'

let db: TestDatabase

beforeAll(async () => {
  db = await createTestDatabase('${slug.replace(/-/g, '_')}')
})

describe('${id}', () => {
  it('runs against a real database and records a succeeded run with its stats', async () => {
    const result = await runScript('scripts/${id}.ts', { env: { DATABASE_URL: db.url } })
    expect(result.code, result.output).toBe(0)
    const [run] = await db.sql\`select status, dry_run, stats from jobs.runs where job = '${id}' order by id desc limit 1\`
    expect(run).toMatchObject({ status: 'succeeded', dry_run: false })
    expect(run!.stats).toHaveProperty('jobsWithHistory')
  })

  it('runs as a dry run with --dry-run', async () => {
    const result = await runScript('scripts/${id}.ts', { args: ['--dry-run'], env: { DATABASE_URL: db.url } })
    expect(result.code, result.output).toBe(0)
    const [run] = await db.sql\`select dry_run from jobs.runs where job = '${id}' order by id desc limit 1\`
    expect(run!.dry_run).toBe(true)
  })

  it('answers --help with exit 0', async () => {
    const result = await runScript('scripts/${id}.ts', { args: ['--help'] })
    expect(result.code, result.output).toBe(0)
    expect(result.stdout).toContain('${id}')
  })
})
`
}
