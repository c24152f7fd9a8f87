import path from 'node:path'
import { type Config, createEnvReader, type EnvReader, parseConfig } from '../config/config.ts'
import { type Duration, formatMs } from '../text/duration.ts'
import { type FlagSpecs, flagType } from './args.ts'
import type { Job } from './types.ts'

/** One environment variable as `--help` lists it: its name, the kind of value, and its default when it has one. */
export interface SettingDoc {
  name: string
  /** `whole number 1–100`, `URL (https://)`, `duration (30s, 15m, 2h)`, … */
  kind: string
  /** The default as text; undefined when the variable is optional or has no fixed default. */
  default?: string
  /** What it is for, where a hand-written page says so. */
  description?: string
}

/** One exit code and what it means. */
export interface ExitCodeDoc {
  code: string
  meaning: string
}

/** The exit codes every job script shares (docs/reference.md, "Exit codes"). */
export const jobExitCodes: readonly ExitCodeDoc[] = [
  { code: '0', meaning: 'succeeded, or skipped (another run holds the lock, the job is paused, its slot was served)' },
  { code: '1', meaning: 'failed' },
  { code: '2', meaning: 'configuration or usage error (nothing was written)' },
  { code: '124', meaning: 'timed out' },
  { code: '130', meaning: 'interrupted by SIGINT' },
  { code: '143', meaning: 'interrupted by SIGTERM' },
]

/** What every job script accepts besides its own flags. */
const dryRunFlag = {
  type: 'boolean',
  description: 'report what it would change, delete or send; change, delete and send nothing (also DRY_RUN=true)',
} as const

/** What a help page is made of; renderHelp lays it out. */
export interface HelpPage {
  title: string
  description: string
  usage: readonly string[]
  flags: FlagSpecs
  /** Groups of settings, each under its heading. */
  settings: readonly { heading: string; items: readonly SettingDoc[] }[]
  notes?: readonly string[]
  exitCodes: readonly ExitCodeDoc[]
}

/** Lays out a help page: description, usage, flags (with -h, --help), settings, notes and exit codes. */
export function renderHelp(page: HelpPage): string {
  const flags: [string, string][] = Object.entries(page.flags).map(([name, spec]) => {
    const value = typeof spec === 'object' ? spec.value : undefined
    const label = flagType(spec) === 'string' ? `--${name} <${value ?? 'value'}>` : `--${name}`
    return [label, typeof spec === 'object' ? (spec.description ?? '') : '']
  })
  flags.push(['-h, --help', 'show this help and exit 0'])
  const out = [`${page.title}: ${page.description}`, '', 'usage:', ...page.usage.map((u) => `  ${u}`)]
  out.push('', 'flags:', ...columns(flags))
  for (const group of page.settings) {
    if (group.items.length === 0) continue
    out.push('', `${group.heading}:`)
    out.push(...columns(group.items.map((s) => [s.name, settingText(s)])))
  }
  if (page.notes?.length) out.push('', ...page.notes)
  out.push('', 'exit codes:', ...columns(page.exitCodes.map((e) => [e.code, e.meaning])))
  return out.join('\n')
}

function settingText(s: SettingDoc): string {
  const kind = s.default === undefined ? s.kind : `${s.kind}, default ${s.default}`
  return s.description ? `${s.description}; ${kind}` : kind
}

function columns(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(0, ...rows.map(([left]) => left.length))
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`.trimEnd())
}

const range = (r?: { min?: number; max?: number }) =>
  r?.min !== undefined && r.max !== undefined
    ? ` ${r.min}–${r.max}`
    : r?.min !== undefined
      ? ` ≥ ${r.min}`
      : r?.max !== undefined
        ? ` ≤ ${r.max}`
        : ''

/**
 * An EnvReader over an empty environment that records every variable asked for, with its kind and default, in
 * `reads` (first read wins). Every read answers its default, so a job's `settings` runs as it would unconfigured.
 */
export function createRecordingReader(reads: SettingDoc[], cwd = process.cwd()): EnvReader {
  const inner = createEnvReader({})
  const seen = new Set<string>()
  const note = (name: string, kind: string, fallback?: string) => {
    if (seen.has(name)) return
    seen.add(name)
    reads.push({
      name,
      kind,
      default: fallback === undefined || fallback === '' ? undefined : shortPath(fallback, cwd),
    })
  }
  const duration = (d: Duration) => (typeof d === 'number' ? formatMs(d) : d)
  return {
    string: ((name: string, fallback?: string) => {
      note(name, 'text', fallback)
      return inner.string(name, fallback as string)
    }) as EnvReader['string'],
    url(name, protocols) {
      note(name, `URL (${protocols.map((p) => `${p}://`).join(', ')})`)
      return inner.url(name, protocols)
    },
    integer(name, fallback, r) {
      note(name, `whole number${range(r)}`, String(fallback))
      return inner.integer(name, fallback, r)
    },
    number(name, fallback, r) {
      note(name, `number${range(r)}`, String(fallback))
      return inner.number(name, fallback, r)
    },
    boolean(name, fallback) {
      note(name, 'true or false', String(fallback))
      return inner.boolean(name, fallback)
    },
    list(name, fallback) {
      note(name, 'comma-separated list', fallback?.join(','))
      return inner.list(name, fallback)
    },
    integerList(name, fallback, r) {
      note(name, `comma-separated whole numbers${range(r)}`, fallback.join(','))
      return inner.integerList(name, fallback, r)
    },
    duration(name, fallback) {
      note(name, 'duration (30s, 15m, 2h; a bare number is seconds)', duration(fallback))
      return inner.duration(name, fallback)
    },
    oneOf(name, allowed, fallback) {
      note(name, `one of ${allowed.join(', ')}`, fallback)
      return inner.oneOf(name, allowed, fallback)
    },
  }
}

/** A default under the working directory reads better relative: `.data/reports`, not this machine's full path. */
function shortPath(value: string, cwd: string): string {
  if (!path.isAbsolute(value) || !value.startsWith(cwd + path.sep)) return value
  return path.relative(cwd, value)
}

/** What the shared settings are for; which ones exist and their defaults come from parseConfig itself. */
const sharedMeaning: Readonly<Record<string, string>> = {
  DATABASE_URL: 'the admin database; unset: the embedded PostgreSQL (refused when CI or GITHUB_ACTIONS is true)',
  ADMIN_JOBS_DATA_DIR: 'local data: the embedded PostgreSQL and the default file directories',
  SLACK_WEBHOOK_URL: 'Slack incoming webhook for alerts',
  SMTP_URL: 'mail server for alerts and reports (smtp://user:pass@host:port)',
  ALERT_EMAIL_FROM: 'sender of alert email',
  ALERT_EMAIL_TO: 'admin recipients of alert email',
  HEALTHCHECK_URLS: 'URLs the health and performance monitors probe',
  HEARTBEAT_URL: 'healthchecks.io-style base pinged at start, success and failure',
  REPORTS_DIR: 'where reports are written',
  ARCHIVE_DIR: 'where audit-log archives are written',
  BACKUP_DIR: 'where database dumps are written',
  AUDIT_LOG_RETENTION_DAYS: 'days audit logs stay in audit_logs',
  EXPIRY_NOTICE_DAYS: 'days before expiry that notices go out',
  GITHUB_TOKEN: 'GitHub API token (watchdog, retry, dispatch)',
  GITHUB_REPOSITORY: 'owner/name on GitHub (set by Actions)',
  GITHUB_API_URL: 'GitHub API base (set by Actions; https://api.github.com otherwise)',
  DRY_RUN: 'true is the same as --dry-run',
  CI: 'true: a missing DATABASE_URL is an error',
  GITHUB_ACTIONS: 'true on Actions: annotations, groups, masking, job summary',
}

/** The settings every job reads (through parseConfig), found by running it with a recording reader. */
export function sharedSettings(cwd = process.cwd()): { config: Config; items: SettingDoc[] } {
  const items: SettingDoc[] = []
  const config = parseConfig({}, cwd, createRecordingReader(items, cwd))
  return { config, items: items.map((s) => ({ ...s, description: sharedMeaning[s.name] })) }
}

/**
 * The settings a job reads in its `settings(read, config, flags, now)`, found by calling it with a recording reader and no
 * flags: the list comes from the job's own code, so it cannot drift from it. A settings function that refuses the
 * defaults still lists what it read up to there.
 */
export function jobSettings(job: Job, config: Config, cwd = process.cwd()): SettingDoc[] {
  const items: SettingDoc[] = []
  if (!job.settings) return items
  try {
    job.settings(createRecordingReader(items, cwd), config, {}, new Date())
  } catch {
    // Listing is the point here; the same check fails the real run with a message naming the variable.
  }
  return items
}

/** The `--help` page of a job script: its description, flags, the settings it reads (own and shared), exit codes. */
export function renderJobHelp(job: Job, id: string, cwd = process.cwd()): string {
  const shared = sharedSettings(cwd)
  const own = jobSettings(job, shared.config, cwd)
  const ownNames = new Set(own.map((s) => s.name))
  const facts = [
    `timeout ${job.timeout === undefined ? '15m' : typeof job.timeout === 'number' ? formatMs(job.timeout) : job.timeout}`,
    job.critical ? 'critical: a failed or timed-out run alerts' : 'not critical',
    job.lock === false ? 'runs may overlap' : 'one run at a time (advisory lock)',
    job.retry === false ? 'no in-process retries' : 'transient errors are retried in-process',
  ]
  return renderHelp({
    title: id,
    description: job.description,
    usage: [`pnpm tsx scripts/${id}.ts [flags]`, `pnpm jobs run ${id} [flags]`],
    flags: { 'dry-run': dryRunFlag, ...job.flags },
    settings: [
      { heading: 'settings of this job (environment variables)', items: own },
      {
        heading: 'settings every job reads',
        items: shared.items.filter((s) => !ownNames.has(s.name)),
      },
    ],
    notes: [`${facts.join('; ')}.`, 'More in docs/reference.md.'],
    exitCodes: jobExitCodes,
  })
}
