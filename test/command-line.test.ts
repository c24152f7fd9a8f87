import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError, defineJob } from '@admin-jobs/sdk'
import { main } from '@admin-jobs/sdk/cli'
import {
  entryScript,
  isMainModule,
  listJobIds,
  loadJob,
  parseCommandLine,
  renderJobHelp,
  runJob,
  wantsHelp,
} from '@admin-jobs/sdk/platform'
import { describe, expect, it } from 'vitest'
import { runScript } from './support/run.ts'

const spec = { json: 'boolean', limit: { type: 'string', value: 'N' }, force: 'boolean' } as const

/** The ConfigError parseCommandLine throws for `argv`, or undefined when it parses. */
function refusal(argv: string[], positionals = false): ConfigError | undefined {
  try {
    parseCommandLine(argv, spec, { positionals })
    return undefined
  } catch (err) {
    return err as ConfigError
  }
}

describe('parseCommandLine', () => {
  it('reads boolean and string flags, inline or as the next argument, and positionals when allowed', () => {
    expect(parseCommandLine(['--json', '--limit', '5'], spec)).toEqual({
      flags: { json: true, limit: '5' },
      positional: [],
    })
    expect(parseCommandLine(['cleanup/sessions', '--limit=7'], spec, { positionals: true })).toEqual({
      flags: { limit: '7' },
      positional: ['cleanup/sessions'],
    })
  })

  it('reads --json=false as false and --json=true as true', () => {
    expect(parseCommandLine(['--json=false'], spec).flags).toEqual({ json: false })
    expect(parseCommandLine(['--json=true', '--force=false'], spec).flags).toEqual({ json: true, force: false })
    // The flag itself wins over an explicit false elsewhere on the line.
    expect(parseCommandLine(['--json=false', '--json'], spec).flags).toEqual({ json: true })
  })

  it('takes a value starting with a dash only when written inline', () => {
    expect(parseCommandLine(['--limit=-1'], spec).flags).toEqual({ limit: '-1' })
    const error = refusal(['--limit', '--json'])
    expect(error).toBeInstanceOf(ConfigError)
    expect(error!.message).toBe(
      '--limit needs a value, not the flag "--json" (to pass a value starting with "-", write --limit=--json; flags: --json, --limit <N>, --force)',
    )
  })

  it('refuses an unknown flag, naming it and the known flags', () => {
    expect(refusal(['--frobnicate'])!.message).toBe('unknown flag --frobnicate (flags: --json, --limit <N>, --force)')
    expect(refusal(['-x'])!.message).toBe('unknown flag -x (flags: --json, --limit <N>, --force)')
    expect(refusal(['--frobnicate'])!.variable).toBe('--frobnicate')
  })

  it('refuses a missing value, a value on a boolean flag and an unexpected argument', () => {
    expect(refusal(['--limit'])!.message).toBe('--limit needs a value (flags: --json, --limit <N>, --force)')
    expect(refusal(['--json=yes'])!.message).toBe(
      '--json takes no value (write --json or --json=false; flags: --json, --limit <N>, --force)',
    )
    expect(refusal(['now'])!.message).toBe('unexpected argument "now" (flags: --json, --limit <N>, --force)')
    expect(refusal(['now'], true)).toBeUndefined()
    expect(() => parseCommandLine(['--anything'], {})).toThrow('unknown flag --anything (it takes no flags)')
  })

  it('treats everything after -- as positional', () => {
    expect(parseCommandLine(['--', '--json=false', '--help'], spec, { positionals: true })).toEqual({
      flags: {},
      positional: ['--json=false', '--help'],
    })
  })
})

describe('wantsHelp', () => {
  it('sees --help and -h anywhere before --, and nothing else', () => {
    expect(wantsHelp(['--help'])).toBe(true)
    expect(wantsHelp(['cleanup/sessions', '-h'])).toBe(true)
    expect(wantsHelp(['--', '--help'])).toBe(false)
    expect(wantsHelp(['--helpful', '--dry-run'])).toBe(false)
  })
})

/** Runs the CLI in-process and collects what it printed. */
async function cli(argv: string[]) {
  const out: string[] = []
  const err: string[] = []
  const code = await main(argv, { env: {}, stdout: (s) => out.push(s), stderr: (s) => err.push(s) })
  return { code, stdout: out.join('\n'), stderr: err.join('\n') }
}

describe('pnpm jobs … --help', () => {
  const commands = ['list', 'run', 'history', 'migrate', 'seed-demo', 'pause', 'resume', 'schedule', 'status', 'psql']

  it('answers on every command with exit 0: what it does, its flags, its settings and the exit codes', async () => {
    for (const name of commands) {
      const result = await cli([name, '--help'])
      expect(result.code, name).toBe(0)
      expect(result.stdout, name).toMatch(new RegExp(`^pnpm jobs ${name}: \\S`))
      expect(result.stdout, name).toContain('-h, --help')
      if (name === 'run') {
        expect(result.stdout).toMatch(/exit codes:\n {2}0 +succeeded[\s\S]*\n {2}143 +interrupted by SIGTERM$/)
        continue
      }
      expect(result.stdout, name).toMatch(
        /exit codes:\n {2}0 +(done|stopped by SIGTERM or SIGINT after draining)\n {2}1 +failed\n {2}2 +usage or configuration/,
      )
      expect(result.stdout, name).toContain('DATABASE_URL')
    }
  })

  it('lists each flag the command parses, with its argument', async () => {
    const history = await cli(['history', '-h'])
    expect(history.stdout).toMatch(/--limit <N> +show at most N runs/)
    expect(history.stdout).toMatch(/--json +print JSON/)
    const pause = await cli(['help', 'pause'])
    expect(pause.code).toBe(0)
    expect(pause.stdout).toMatch(/--until <time> +when the pause ends/)
    expect(pause.stdout).toContain('GITHUB_ACTOR')
  })

  it('shows the command list for pnpm jobs --help (exit 0) and without a command (exit 2)', async () => {
    const help = await cli(['--help'])
    expect(help.code).toBe(0)
    for (const name of commands) expect(help.stdout).toMatch(new RegExp(`^ {2}${name}\\b`, 'm'))
    expect((await cli([])).code).toBe(2)
  })

  it('refuses a flag a command does not have, and a flag taken as a value, with exit 2 before any work', async () => {
    const unknown = await cli(['list', '--limit', '3'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toBe('error: unknown flag --limit (flags: --json)')
    const swallowed = await cli(['history', '--limit', '--json'])
    expect(swallowed.code).toBe(2)
    expect(swallowed.stderr).toContain('--limit needs a value, not the flag "--json"')
    const bad = await cli(['seed-demo', '--force=maybe'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('--force takes no value')
  })
})

describe('a job script’s --help', () => {
  const job = defineJob({
    description: 'Prune the widgets',
    timeout: '5m',
    flags: { keep: { type: 'string', value: 'N', description: 'widgets to keep' }, all: 'boolean' },
    settings: (read, config, flags) => ({
      keep: flags.keep ? Number(flags.keep) : read.integer('WIDGET_KEEP', 10, { min: 1, max: 99 }),
      grace: read.duration('WIDGET_GRACE', '2h'),
      mode: read.oneOf('WIDGET_MODE', ['soft', 'hard'], 'soft'),
      endpoint: read.url('WIDGET_URL', ['https']),
      dir: config.reportsDir,
    }),
    async run() {},
  })

  it('lists the description, the flags with --dry-run, the settings the job reads with defaults, and the exit codes', () => {
    const text = renderJobHelp(job, 'widgets/prune', '/srv/app')
    expect(text.split('\n')[0]).toBe('widgets/prune: Prune the widgets')
    expect(text).toContain('pnpm tsx scripts/widgets/prune.ts [flags]')
    expect(text).toMatch(/--dry-run +report what it would change/)
    expect(text).toMatch(/--keep <N> +widgets to keep/)
    expect(text).toMatch(/--all\n/)
    const own = text.slice(text.indexOf('settings of this job'), text.indexOf('settings every job reads'))
    expect(own).toMatch(/WIDGET_KEEP +whole number 1–99, default 10/)
    expect(own).toMatch(/WIDGET_GRACE +duration .*, default 2h/)
    expect(own).toMatch(/WIDGET_MODE +one of soft, hard, default soft/)
    expect(own).toMatch(/WIDGET_URL +URL \(https:\/\/\)/)
    expect(own).not.toContain('DATABASE_URL')
    const shared = text.slice(text.indexOf('settings every job reads'), text.indexOf('exit codes:'))
    expect(shared).toMatch(/DATABASE_URL +the admin database/)
    expect(shared).toMatch(/AUDIT_LOG_RETENTION_DAYS .*default 90/)
    // Defaults under the working directory are shown relative to it.
    expect(shared).toMatch(/REPORTS_DIR .*default \.data\/reports/)
    expect(text).toContain('timeout 5m; not critical')
    expect(text).toMatch(
      /exit codes:\n {2}0 +succeeded, or skipped[\s\S]* {2}124 +timed out\n {2}130 +interrupted by SIGINT\n {2}143 +interrupted by SIGTERM$/,
    )
  })

  it('still lists what a settings function read before it refused the defaults', () => {
    const strict = defineJob({
      description: 'Needs a target',
      settings: (read) => {
        const target = read.string('TARGET_NAME')
        if (!target) throw new ConfigError('TARGET_NAME is not set', { variable: 'TARGET_NAME' })
        return { target, depth: read.integer('TARGET_DEPTH', 3) }
      },
      async run() {},
    })
    const text = renderJobHelp(strict, 'x/strict')
    expect(text).toMatch(/TARGET_NAME +text/)
    expect(text).not.toContain('TARGET_DEPTH')
  })

  it('names every setting each job of this repository reads, with its default', async () => {
    const sessions = renderJobHelp(await loadJob('cleanup/sessions'), 'cleanup/sessions')
    expect(sessions).toMatch(/SESSIONS_MAX_FRACTION +text, default 1\b/)
    expect(sessions).toMatch(/--max-fraction <share> +optional limit/)
    const backups = renderJobHelp(await loadJob('backups/database'), 'backups/database')
    expect(backups).toMatch(/BACKUP_KEEP_DAILY +whole number 1–3660, default 7/)
    expect(backups).toMatch(/--verify <file\|latest>/)
    for (const id of listJobIds()) {
      const job = await loadJob(id)
      expect(renderJobHelp(job, id).split('\n')[0], id).toBe(`${id}: ${job.description}`)
    }
  })

  it('answers through runJob with exit 0 before reading any configuration', async () => {
    const printed: string[] = []
    // A configuration that would be exit 2 (CI without DATABASE_URL, a malformed setting): --help never gets there.
    const code = await runJob(job, {
      id: 'widgets/prune',
      argv: ['--dry-run', '--help'],
      env: { CI: 'true', WIDGET_KEEP: 'x' },
      output: (_stream, line) => printed.push(line),
    })
    expect(code).toBe(0)
    expect(printed.join('\n')).toMatch(/^widgets\/prune: Prune the widgets\n/)
  })

  it('exits 0 from a spawned script, even where a run would be refused for its configuration', async () => {
    const result = await runScript('scripts/cleanup/sessions.ts', { args: ['--help'], env: { CI: 'true' } })
    expect(result.code, result.output).toBe(0)
    expect(result.stdout).toMatch(/^cleanup\/sessions: Delete expired sessions/)
    expect(result.stderr).toBe('')
    const run = await runScript('scripts/cleanup/sessions.ts', { env: { CI: 'true' } })
    expect(run.code).toBe(2)
  })
})

describe('isMainModule', () => {
  const self = fileURLToPath(import.meta.url)

  it('is true for the started script, also through a symlink, and false otherwise', () => {
    expect(isMainModule(import.meta.url, ['node', self])).toBe(true)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'entry-'))
    try {
      const link = path.join(dir, 'link.ts')
      fs.symlinkSync(self, link)
      expect(isMainModule(import.meta.url, ['node', link])).toBe(true)
      expect(entryScript(['node', link])).toBe(fs.realpathSync(self))
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
    expect(isMainModule(import.meta.url, ['node', path.join(path.dirname(self), 'cli.test.ts')])).toBe(false)
    expect(isMainModule(import.meta.url, ['node'])).toBe(false)
    expect(isMainModule(import.meta.url, ['node', '/nonexistent/script.ts'])).toBe(false)
  })
})
