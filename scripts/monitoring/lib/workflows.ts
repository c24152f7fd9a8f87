import type { Logger } from '@admin-jobs/sdk'
import type { GitHubClient, GitHubWorkflow, JobSchedule } from '@admin-jobs/sdk/platform'

/** What the watchdog found (and did) for one job's workflow on GitHub. */
export interface WorkflowState {
  job: string
  workflowFile: string
  state: GitHubWorkflow['state'] | 'unknown'
  /** `reenabled`: was disabled for inactivity, now enabled with a catch-up dispatch sent (or would be, in a dry run). */
  action: 'none' | 'reenabled' | 'left-alone'
  /** The ref a catch-up run was dispatched on. */
  ref?: string
}

/**
 * Reads the state of every scheduled job's workflow. A workflow GitHub disabled for inactivity is re-enabled and a
 * catch-up `workflow_dispatch` is sent on the default branch; one disabled by hand is reported and left alone.
 * In a dry run nothing is changed.
 */
export async function reconcileWorkflows(options: {
  client: GitHubClient
  schedules: readonly JobSchedule[]
  dryRun: boolean
  log: Logger
}): Promise<WorkflowState[]> {
  const { client, log } = options
  const byPath = new Map((await client.listWorkflows()).map((w) => [w.path.replace(/^\.\//, ''), w]))
  let ref: string | undefined
  const out: WorkflowState[] = []
  for (const schedule of options.schedules) {
    const workflow = byPath.get(schedule.workflowFile.replace(/\\/g, '/'))
    const base = { job: schedule.job, workflowFile: schedule.workflowFile }
    if (!workflow) {
      out.push({ ...base, state: 'unknown', action: 'none' })
      continue
    }
    if (workflow.state === 'disabled_inactivity') {
      ref ??= await client.defaultBranch()
      if (options.dryRun) {
        log.info('dry run: would re-enable a workflow disabled for inactivity and dispatch a catch-up run', {
          workflow: schedule.workflowFile,
          ref,
        })
      } else {
        await client.enableWorkflow(workflow.id)
        await client.dispatchWorkflow(workflow.id, ref)
        log.warn('re-enabled a workflow GitHub disabled for inactivity; catch-up run dispatched', {
          workflow: schedule.workflowFile,
          ref,
        })
      }
      out.push({ ...base, state: workflow.state, action: 'reenabled', ref })
    } else if (workflow.state === 'active') {
      out.push({ ...base, state: workflow.state, action: 'none' })
    } else {
      out.push({ ...base, state: workflow.state, action: 'left-alone' })
    }
  }
  return out
}
