import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { ConfigError } from '../runtime/errors.ts'
import type { Job } from '../runtime/types.ts'
import { repoRoot } from '../schedules/schedules.ts'

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
  const module = (await import(pathToFileURL(jobScript(id, root)).href)) as { default?: Job }
  if (!module.default?.run) throw new Error(`scripts/${id}.ts does not export default defineJob({ ... })`)
  return module.default
}
