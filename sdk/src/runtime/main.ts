import { secretVariables } from '../config/config.ts'
import { createMasker } from '../config/redact.ts'
import { ConfigError, toError } from './errors.ts'
import { exitCodes } from './exit-codes.ts'
import { tolerateClosedOutput } from './log.ts'
import { runJob } from './runner.ts'
import type { Job } from './types.ts'

/** The job id of a script path: `…/scripts/cleanup/sessions.ts` → `cleanup/sessions`. */
export function jobIdFromFile(file: string): string {
  const match = /(?:^|[\\/])scripts[\\/](.+)\.[cm]?[jt]s$/.exec(file)
  if (!match) throw new ConfigError(`cannot derive a job id from ${file}: jobs live in scripts/<area>/<job>.ts`)
  return match[1]!.replace(/\\/g, '/')
}

const mask = (text: string) =>
  createMasker(secretVariables.map((n) => process.env[n]).filter((v): v is string => !!v))(text)

/** The exit code of a process that had to be ended while stopping. */
const stopCodes = {
  SIGINT: exitCodes.SIGINT,
  SIGTERM: exitCodes.SIGTERM,
  timed_out: exitCodes.timed_out,
  lock_lost: exitCodes.failed,
  fenced: exitCodes.failed,
} as const

/** Runs `job` (defined in `file`) as the process's main program and exits with its code. */
export async function runMain(job: Job, file: string): Promise<never> {
  // Output is never worth a run: a closed pipe must not stop it before it records its outcome.
  tolerateClosedOutput()
  let code: number
  try {
    code = await runJob(job, { id: jobIdFromFile(file), exitNow: (reason) => process.exit(stopCodes[reason]) })
  } catch (err) {
    process.stderr.write(`admin-jobs: ${mask(toError(err).stack ?? String(err))}\n`)
    code = err instanceof ConfigError ? exitCodes.config : exitCodes.failed
  }
  return exit(code)
}

/** Ends a job script whose default export is not a job: exit 2, saying so. */
export function exitWithoutJob(file: string): Promise<never> {
  process.stderr.write(
    `admin-jobs: ${file} was run as a job, but its default export is not a job, so nothing ran.\n` +
      '  A job script ends with `export default defineJob({ description, run })` (see docs/reference.md).\n',
  )
  return exit(exitCodes.config)
}

async function exit(code: number): Promise<never> {
  // Let stdout/stderr drain before leaving; lingering sockets or timers must not keep a finished job alive.
  await new Promise((resolve) => process.stdout.write('', resolve))
  process.exit(code)
}
