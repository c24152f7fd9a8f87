import type { Logger } from '@admin-jobs/sdk'
import type { GitHubClient, GitHubWorkflow, JobSchedule } from '@admin-jobs/sdk/platform'

/** What the watchdog found (and did) for one job's workflow on GitHub. */
export interface WorkflowState {
  job: string
  workflowFile: string
  state: GitHubWorkflow['state'] | 'unknown'
  /** `reenabled`: was disabled for inactivity, now enabled (or would be, in a dry run); `left-alone`: disabled by hand. */
  action: 'none' | 'reenabled' | 'left-alone'
  id?: number
}

const fileOf = (w: GitHubWorkflow) => w.path.replace(/^\.\//, '')

/**
 * Reads the state of every scheduled job's workflow. A workflow GitHub disabled for inactivity is re-enabled (its
 * catch-up dispatch is the caller's, through the dispatch path); one disabled by hand is reported and left alone.
 * In a dry run nothing is changed.
 */
export async function reconcileWorkflows(options: {
  client: GitHubClient
  workflows: readonly GitHubWorkflow[]
  schedules: readonly JobSchedule[]
  dryRun: boolean
  log: Logger
}): Promise<WorkflowState[]> {
  const { client, log } = options
  const byPath = new Map(options.workflows.map((w) => [fileOf(w), w]))
  const out: WorkflowState[] = []
  for (const schedule of options.schedules) {
    const workflow = byPath.get(schedule.workflowFile.replace(/\\/g, '/'))
    const base = { job: schedule.job, workflowFile: schedule.workflowFile }
    if (!workflow) {
      out.push({ ...base, state: 'unknown', action: 'none' })
      continue
    }
    if (workflow.state === 'disabled_inactivity') {
      if (options.dryRun) {
        log.info('dry run: would re-enable a workflow disabled for inactivity and dispatch a catch-up run', {
          workflow: schedule.workflowFile,
        })
      } else {
        await client.enableWorkflow(workflow.id)
        log.warn('re-enabled a workflow GitHub disabled for inactivity', { workflow: schedule.workflowFile })
      }
      out.push({ ...base, state: workflow.state, action: 'reenabled', id: workflow.id })
    } else if (workflow.state === 'active') {
      out.push({ ...base, state: workflow.state, action: 'none', id: workflow.id })
    } else {
      out.push({ ...base, state: workflow.state, action: 'left-alone', id: workflow.id })
    }
  }
  return out
}

/** Default: an active scheduled workflow is kept alive once a week (GitHub disables them after 60 idle days). */
export const keepAliveEveryMs = 7 * 86_400_000

/**
 * Keeps the scheduled workflows of a public repository from GitHub's 60-day inactivity disable: every active one
 * (the watchdog's own included) gets `PUT …/workflows/{id}/enable` once per `everyMs`, the practice of the keepalive
 * actions that need no commit. `keptAt` (workflow file → last time) is updated in place. Private and internal
 * repositories are never disabled for inactivity: nothing is called there. Returns the workflows enabled.
 */
export async function keepWorkflowsAlive(options: {
  client: GitHubClient
  visibility: string
  workflows: readonly GitHubWorkflow[]
  scheduledFiles: ReadonlySet<string>
  keptAt: Record<string, string>
  now: Date
  dryRun: boolean
  log: Logger
  everyMs?: number
}): Promise<string[]> {
  if (options.visibility !== 'public') return []
  const every = options.everyMs ?? keepAliveEveryMs
  const kept: string[] = []
  for (const w of options.workflows) {
    const file = fileOf(w)
    if (w.state !== 'active' || !options.scheduledFiles.has(file)) continue
    const last = options.keptAt[file] ? new Date(options.keptAt[file]).getTime() : Number.NEGATIVE_INFINITY
    if (options.now.getTime() - last < every) continue
    if (options.dryRun) {
      options.log.info('dry run: would keep a scheduled workflow alive', { workflow: file })
      continue
    }
    await options.client.enableWorkflow(w.id)
    options.keptAt[file] = options.now.toISOString()
    kept.push(file)
  }
  if (kept.length) options.log.info('kept scheduled workflows from the inactivity disable', { workflows: kept.length })
  return kept
}
