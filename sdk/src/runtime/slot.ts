import fs from 'node:fs'
import path from 'node:path'
import type { Env } from '../config/config.ts'
import { repoRoot } from '../project/root.ts'
import { ConfigError } from './errors.ts'

/**
 * The schedule slot a run of `job` starting at `at` serves: ADMIN_JOBS_SLOT when a dispatcher named it, otherwise the
 * latest fire time of the job's workflow schedule at or before `at` (undefined for a job without one). The schedule
 * code loads only when a workflow names the job, so jobs without a workflow pay nothing at start-up.
 */
export async function resolveSlot(job: string, env: Env, at: Date, root = repoRoot()): Promise<Date | undefined> {
  const given = env.ADMIN_JOBS_SLOT?.trim()
  if (given) {
    const slot = new Date(given)
    if (Number.isNaN(slot.getTime()) || !/^\d{4}-\d{2}-\d{2}T/.test(given))
      throw new ConfigError(`ADMIN_JOBS_SLOT must be an ISO time (got "${given}")`, { variable: 'ADMIN_JOBS_SLOT' })
    return slot
  }
  const text = workflowOf(job, root)
  if (text === undefined) return undefined
  const { latestFireAt, readCronEntries } = await import('../schedules/crons.ts')
  try {
    return latestFireAt(readCronEntries(text), at)
  } catch {
    // A cron the scheduler cannot read is the watchdog's and the workflow tests' to report, not a reason to fail here.
    return undefined
  }
}

/** The text of the workflow that runs `job` and no other job (a shared workflow's cron is a tick, not a schedule). */
function workflowOf(job: string, root: string): string | undefined {
  const dir = path.join(root, '.github', 'workflows')
  let files: string[]
  try {
    files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))
  } catch {
    return undefined
  }
  const runs = new RegExp(`(scripts/${escapeRegExp(job)}\\.ts|jobs run ${escapeRegExp(job)})(\\s|$)`, 'm')
  for (const f of files.sort()) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8')
    const jobs = new Set(text.match(/scripts\/[\w-]+\/[\w-]+\.ts/g) ?? [])
    if (runs.test(text) && jobs.size <= 1) return text
  }
  return undefined
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')

/** Triggers that serve a slot: a run they start for a slot already served ends `skipped` (exactly one per slot). */
export const slotTriggers: readonly string[] = ['schedule', 'dispatch', 'scheduler']
