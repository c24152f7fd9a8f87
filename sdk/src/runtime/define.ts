import { pathToFileURL } from 'node:url'
import { entryScript } from './entry.ts'
import type { Job, JobDefinition } from './types.ts'

const jobMark = Symbol.for('admin-jobs.job')

/**
 * Defines a job: `export default defineJob({ ... })` in `scripts/<area>/<job>.ts`. Defining runs nothing; when that
 * script is the process's entry (`pnpm tsx scripts/cleanup/sessions.ts`), the runtime runs its default export.
 */
export function defineJob<S = undefined>(definition: JobDefinition<S>): Job<S> {
  if (isJob(definition)) return definition as Job<S>
  if (typeof (definition as Partial<JobDefinition<S>> | undefined)?.run !== 'function')
    throw new TypeError('defineJob needs a definition with a run function')
  return Object.freeze({ ...(definition as JobDefinition<S>), [jobMark]: true }) as Job<S>
}

/** True for a value defineJob returned. */
export function isJob(value: unknown): value is Job {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[jobMark] === true
}

/** True when `file` is a job script by its place: `…/scripts/<area>/<job>.ts` (not a file under an area's `lib/`). */
export function isJobScriptPath(file: string): boolean {
  return /(?:^|[\\/])scripts[\\/][\w-]+[\\/][\w-]+\.[cm]?[jt]s$/.test(file) && !/[\\/]lib[\\/][^\\/]+$/.test(file)
}

let entryChecked = false

/**
 * Once per process, when the entry script is a job script: after it has loaded, run its default export, however the
 * job was built (directly, or through a helper that calls defineJob). A job script whose default export is no job
 * exits 2 saying so, instead of exiting 0 having run nothing.
 */
function runEntryScript(): void {
  if (entryChecked) return
  entryChecked = true
  const entry = entryScript()
  if (!entry || !isJobScriptPath(entry)) return
  setImmediate(async () => {
    const module = (await import(pathToFileURL(entry).href)) as { default?: unknown }
    const { runMain, exitWithoutJob } = await import('./main.ts')
    const value = module.default
    if (isJob(value)) return runMain(value, entry)
    if (typeof (value as JobDefinition | undefined)?.run === 'function')
      return runMain(defineJob(value as JobDefinition), entry)
    return exitWithoutJob(entry)
  })
}

runEntryScript()
