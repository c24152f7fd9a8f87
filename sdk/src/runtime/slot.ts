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
  if (!mentionedByAWorkflow(job, root)) return undefined
  const { loadSchedules, slotAt } = await import('../schedules/schedules.ts')
  const [schedule] = loadSchedules(root, job)
  if (!schedule || schedule.cron.length === 0) return undefined
  try {
    return slotAt(schedule, at)
  } catch {
    // A cron the scheduler cannot read is the watchdog's and the workflow tests' to report, not a reason to fail here.
    return undefined
  }
}

function mentionedByAWorkflow(job: string, root: string): boolean {
  const dir = path.join(root, '.github', 'workflows')
  let files: string[]
  try {
    files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))
  } catch {
    return false
  }
  return files.some((f) => {
    const text = fs.readFileSync(path.join(dir, f), 'utf8')
    return text.includes(`scripts/${job}.ts`) || text.includes(`jobs run ${job}`)
  })
}

/** Triggers that serve a slot: a run they start for a slot already served ends `skipped` (exactly one per slot). */
export const slotTriggers: readonly string[] = ['schedule', 'dispatch', 'scheduler']
