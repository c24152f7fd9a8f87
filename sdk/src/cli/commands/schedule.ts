import fs from 'node:fs'
import path from 'node:path'
import { parseConfig } from '../../config/config.ts'
import { ConfigError } from '../../runtime/errors.ts'
import { createLogger } from '../../runtime/log.ts'
import { loadSchedules, repoRoot } from '../../schedules/schedules.ts'
import { toMs } from '../../text/duration.ts'
import { startScheduler } from '../scheduler.ts'
import { type Command, databaseSettings } from './command.ts'

/** `pnpm jobs schedule`: runs every job on its workflow schedule until SIGTERM/SIGINT, then drains. */
const schedule: Command = {
  name: 'schedule',
  usage: 'schedule [--only <job,...>] [--drain-timeout 5m]',
  description: 'local scheduler: run every job on its workflow schedule (SIGTERM drains)',
  flags: {
    only: { type: 'string', value: 'job,...', description: 'schedule only these jobs' },
    'drain-timeout': {
      type: 'string',
      value: 'duration',
      description: 'how long running jobs may finish after SIGTERM/SIGINT before they are stopped (default 5m)',
    },
    root: {
      type: 'string',
      value: 'dir',
      description: 'repository whose workflows are scheduled (default: this checkout)',
    },
  },
  settings: [
    ...databaseSettings,
    { name: 'ADMIN_JOBS_ROOT', kind: 'directory', description: 'repository to schedule when --root is not given' },
  ],
  notes: ["Each run is a child process with the scheduler's environment; a second signal stops running jobs at once."],
  exitCodes: [{ code: '0', meaning: 'stopped by SIGTERM or SIGINT after draining' }],
  async run({ flags }, io) {
    const root = path.resolve((flags.root as string | undefined) ?? io.env.ADMIN_JOBS_ROOT ?? repoRoot())
    if (!fs.existsSync(path.join(root, '.github', 'workflows')))
      throw new ConfigError(`--root ${root} has no .github/workflows`)
    let drainMs: number
    try {
      drainMs = toMs((flags['drain-timeout'] as string | undefined) ?? '5m')
    } catch {
      throw new ConfigError(`--drain-timeout must be a duration such as 30s or 5m (got "${flags['drain-timeout']}")`)
    }
    const config = parseConfig(io.env)
    const log = createLogger({ scope: 'scheduler', secrets: config.secrets, write: (_s, line) => io.stdout(line) })
    const only = typeof flags.only === 'string' ? flags.only.split(',').map((s) => s.trim()) : undefined
    let schedules = loadSchedules(root).filter((s) => s.cron.length > 0)
    if (only) {
      const unknown = only.filter((job) => !schedules.some((s) => s.job === job))
      if (unknown.length) throw new ConfigError(`--only: no scheduled workflow runs ${unknown.join(', ')}`)
      schedules = schedules.filter((s) => only.includes(s.job))
    }
    if (schedules.length === 0) throw new ConfigError(`no scheduled workflow under ${root}/.github/workflows`)
    const scheduler = startScheduler({
      root,
      schedules,
      env: io.env,
      log,
      output: (stream, line) => (stream === 'out' ? io.stdout(line) : io.stderr(line)),
    })
    log.info(`scheduling ${schedules.length} job(s); SIGTERM or Ctrl-C drains running jobs and exits`)
    await new Promise<void>((resolve) => {
      let lastSignalAt = 0
      const onSignal = (signal: NodeJS.Signals) => {
        // pnpm and tsx relay a signal they receive, so one stop can arrive twice: only a later one forces.
        if (Date.now() - lastSignalAt < 1000) return
        const second = lastSignalAt > 0
        lastSignalAt = Date.now()
        log.info(second ? `${signal} again: stopping running jobs now` : `${signal}: no new starts`)
        void scheduler.stop({ drainMs }).then(() => {
          process.off('SIGTERM', onSignal)
          process.off('SIGINT', onSignal)
          resolve()
        })
      }
      process.on('SIGTERM', onSignal)
      process.on('SIGINT', onSignal)
    })
    return 0
  },
}

export default schedule
