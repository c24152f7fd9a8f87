import { PerformanceObserver } from 'node:perf_hooks'
import v8 from 'node:v8'
import { secretVariables } from '../config/config.ts'
import { createMasker } from '../config/redact.ts'
import { ConfigError, toError } from './errors.ts'
import { exitCodes } from './exit-codes.ts'
import { tolerateClosedOutput } from './log.ts'
import { recordCrash, runJob } from './runner.ts'
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
  installLastResort()
  // A long run's peak memory is then a short run's: see capYoungGeneration.
  capYoungGeneration()
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

let installed = false

/**
 * An error no code can catch (thrown from a driver's socket callback, say) would kill the process with the run still
 * `running` and nobody told. Record it first, within a bound, then exit 1.
 */
function installLastResort(): void {
  if (installed) return
  installed = true
  let crashing = false
  const crash = (value: unknown) => {
    const error = toError(value)
    if (crashing) return
    crashing = true
    process.stderr.write(`admin-jobs: uncaught error: ${mask(error.stack ?? error.message)}\n`)
    const hard = setTimeout(() => process.exit(exitCodes.failed), 15_000)
    hard.unref()
    recordCrash(error)
      .catch(() => {})
      .finally(() => void exit(exitCodes.failed))
  }
  process.on('uncaughtException', crash)
  process.on('unhandledRejection', crash)
}

/** The young generation a job process may grow to (two 2 MB semi-spaces): what V8 reaches within a short run. */
export const youngGenerationCapBytes = 4 * 1024 * 1024

/**
 * Stops V8 growing its young generation once it has reached `capBytes` (default 4 MB). V8 doubles the young
 * generation whenever enough objects have survived since it last grew, so over a long run it reaches its maximum
 * (32 MB) however little the job keeps: a batch job's peak memory would grow with its run's length. The size is
 * checked after garbage collections, between callbacks, so a long synchronous stretch may double it once more (8 MB).
 * Measured on the audit archival: 94 MB peak for 1M rows and 96 MB for 4M (116 and 133 MB uncapped), and no slower.
 * Growth stops through the growth factor, the one young-generation setting V8 reads after start-up.
 */
export function capYoungGeneration(capBytes = youngGenerationCapBytes): void {
  const observer = new PerformanceObserver(() => {
    if (youngGenerationBytes() < capBytes) return
    v8.setFlagsFromString('--semi-space-growth-factor=1')
    observer.disconnect()
  })
  observer.observe({ entryTypes: ['gc'] })
}

/** The young generation's current size (V8's `new_space`). */
export function youngGenerationBytes(): number {
  return v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0
}
