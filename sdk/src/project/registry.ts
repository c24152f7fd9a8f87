import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { isJob } from '../runtime/define.ts'
import { ConfigError } from '../runtime/errors.ts'
import type { Job } from '../runtime/types.ts'
import { repoRoot } from './root.ts'

/** Every job id under `<root>/scripts` (`scripts/<area>/<job>.ts` → `<area>/<job>`), sorted. */
export function listJobIds(root = repoRoot()): string[] {
  const dir = path.join(root, 'scripts')
  if (!fs.existsSync(dir)) return []
  const ids: string[] = []
  for (const area of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!area.isDirectory()) continue
    for (const file of fs.readdirSync(path.join(dir, area.name))) {
      if (/^[\w-]+\.ts$/.test(file) && !file.endsWith('.test.ts')) ids.push(`${area.name}/${file.replace(/\.ts$/, '')}`)
    }
  }
  return ids.sort()
}

/** The script path of a job id; a ConfigError naming the known jobs when there is none. */
export function jobScript(id: string, root = repoRoot()): string {
  const known = listJobIds(root)
  if (!known.includes(id)) throw new ConfigError(`unknown job "${id}" (known jobs: ${known.join(', ')})`)
  return path.join(root, 'scripts', `${id}.ts`)
}

/** Imports a job's module without running it and returns its definition. */
export async function loadJob(id: string, root = repoRoot()): Promise<Job> {
  const module = (await import(pathToFileURL(jobScript(id, root)).href)) as { default?: unknown }
  if (!isJob(module.default)) throw new Error(`scripts/${id}.ts does not export default defineJob({ ... })`)
  return module.default
}

/** What the platform knows of a job from its definition, for the CLI, the watchdog and the status page. */
export interface JobInfo {
  id: string
  description: string
  critical: boolean
  /** Why it keeps running under `pause all`; undefined when it pauses with the rest. */
  exemptFromPauseAll: string | undefined
  headline: readonly string[] | undefined
  /** Set when the job's module could not be loaded (its runs fail loudly on their own). */
  loadError?: string
}

/** Every job's definition facts, loading each module once (loading runs nothing). */
export async function loadJobInfos(root = repoRoot()): Promise<JobInfo[]> {
  return Promise.all(
    listJobIds(root).map(async (id): Promise<JobInfo> => {
      try {
        const job = await loadJob(id, root)
        return {
          id,
          description: job.description,
          critical: job.critical === true,
          exemptFromPauseAll: job.exemptFromPauseAll,
          headline: job.headline,
        }
      } catch (err) {
        const loadError = (err as Error).message
        return { id, description: '', critical: false, exemptFromPauseAll: undefined, headline: undefined, loadError }
      }
    }),
  )
}
