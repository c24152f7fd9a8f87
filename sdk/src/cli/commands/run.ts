import { spawn } from 'node:child_process'
import { jobScript } from '../../project/registry.ts'
import { ConfigError } from '../../runtime/errors.ts'
import { jobExitCodes } from '../../runtime/help.ts'
import { repoRoot } from '../../schedules/schedules.ts'
import type { Command } from './command.ts'

/** `pnpm jobs run <job-id> [flags]`: runs the job's script as a child process, exactly as running it directly. */
const run: Command = {
  name: 'run',
  usage: 'run <job-id> [--dry-run] [flags]',
  description: 'run a job now (same as pnpm tsx scripts/<job-id>.ts)',
  flags: {},
  passThrough: true,
  notes: [
    "The flags after the job id are the job's: `pnpm jobs run <job-id> --help` lists them and the settings it reads.",
  ],
  // The job script's own codes, passed through.
  exitCodes: jobExitCodes,
  async run({ positional: args }, io) {
    const [id, ...rest] = args
    if (!id || id.startsWith('--')) throw new ConfigError('usage: pnpm jobs run <job-id> [--dry-run]')
    const script = jobScript(id)
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...rest], {
      cwd: repoRoot(),
      env: io.env as NodeJS.ProcessEnv,
      stdio: 'inherit',
    })
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal)
    const onInt = forward('SIGINT')
    const onTerm = forward('SIGTERM')
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
    try {
      return await new Promise<number>((resolve, reject) => {
        child.once('error', reject)
        child.once('close', (code, signal) => {
          resolve(code ?? (signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 1))
        })
      })
    } finally {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
    }
  },
}

export default run
