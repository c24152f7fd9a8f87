import type { Sql } from 'postgres'
import { claimDispatch, claimsOf, settleDispatch, slotKey } from '../records/dispatches.ts'
import { takenSlots } from '../records/runs.ts'
import { firstLine, toError } from '../runtime/errors.ts'
import type { Logger } from '../runtime/log.ts'
import { type JobSchedule, nextRun, slotAt } from '../schedules/schedules.ts'
import type { GitHubClient, GitHubWorkflow } from './client.ts'

/** One job's slot to dispatch. */
export interface SlotToDispatch {
  job: string
  slot: Date
  workflowFile: string
}

/** What became of one slot: sent, left alone (served, running, claimed, inactive workflow), or refused by GitHub. */
export interface DispatchResult extends SlotToDispatch {
  outcome: 'dispatched' | 'would-dispatch' | 'taken' | 'claimed' | 'inactive' | 'refused' | 'unknown'
  detail?: string
}

/** The workflow input that carries the slot, mapped to ADMIN_JOBS_SLOT in each job workflow's run step. */
export const slotInput = 'slot'

/** Default: a slot older than 6 hours is left to the watchdog (a dispatcher that was down does not replay a day). */
export const defaultMaxSlotAgeMs = 6 * 3_600_000

/** The current slot of each schedule at `now` (its latest fire time at or before now), unless older than `maxAgeMs`. */
export function currentSlots(
  schedules: readonly JobSchedule[],
  now: Date,
  maxAgeMs = defaultMaxSlotAgeMs,
): SlotToDispatch[] {
  const out: SlotToDispatch[] = []
  for (const s of schedules) {
    if (s.cron.length === 0) continue
    const slot = slotAt(s, now)
    if (slot && now.getTime() - slot.getTime() <= maxAgeMs)
      out.push({ job: s.job, slot, workflowFile: s.workflowFile.replace(/\\/g, '/') })
  }
  return out
}

/** What dispatchSlots needs; `workflows` and `ref` are read from GitHub when not given (callers cache them). */
export interface DispatchOptions {
  sql: Sql
  client: GitHubClient
  slots: readonly SlotToDispatch[]
  /** Who claims (`dispatcher@host`, `watchdog`): kept with the claim. */
  by: string
  now: Date
  log: Pick<Logger, 'info' | 'warn'>
  dryRun?: boolean
  workflows?: readonly GitHubWorkflow[]
  ref?: string
}

/**
 * Dispatches each slot at most once, through `POST …/workflows/{id}/dispatches` with the slot as input: a slot a run
 * already serves (succeeded or running), one claimed by another dispatcher or the watchdog, or one whose workflow is
 * not active is left alone. Each dispatch is claimed in `jobs.dispatches` before the call; a refusal (4xx) releases the
 * claim, an unknown outcome (timeout, 5xx after retries) keeps it, since GitHub may have taken the dispatch.
 */
export async function dispatchSlots(options: DispatchOptions): Promise<DispatchResult[]> {
  const { sql, client, log } = options
  if (options.slots.length === 0) return []
  const [taken, claimed] = await Promise.all([takenSlots(sql, options.slots), claimsOf(sql, options.slots)])
  const open = options.slots.filter((s) => !taken.has(slotKey(s.job, s.slot)) && !claimed.has(slotKey(s.job, s.slot)))
  const results: DispatchResult[] = options.slots
    .filter((s) => !open.includes(s))
    .map((s) => ({ ...s, outcome: taken.has(slotKey(s.job, s.slot)) ? 'taken' : 'claimed' }))
  if (open.length === 0) return results
  const workflows = options.workflows ?? (await client.listWorkflows())
  const byPath = new Map(workflows.map((w) => [w.path.replace(/^\.\//, ''), w]))
  let ref = options.ref
  for (const s of open) {
    const workflow = byPath.get(s.workflowFile)
    if (workflow?.state !== 'active') {
      results.push({ ...s, outcome: 'inactive', detail: workflow ? workflow.state : 'not on GitHub' })
      continue
    }
    if (options.dryRun) {
      results.push({ ...s, outcome: 'would-dispatch' })
      continue
    }
    if (
      !(await claimDispatch(sql, {
        job: s.job,
        slot: s.slot,
        by: options.by,
        workflow: s.workflowFile,
        at: options.now,
      }))
    ) {
      results.push({ ...s, outcome: 'claimed' })
      continue
    }
    try {
      ref ??= await client.defaultBranch()
      await client.dispatchWorkflow(workflow.id, ref, { [slotInput]: s.slot.toISOString() })
      await settleDispatch(sql, s, { status: 'sent' })
      results.push({ ...s, outcome: 'dispatched' })
    } catch (err) {
      const error = toError(err)
      const status = (err as { status?: number }).status
      const refused = status !== undefined && status >= 400 && status < 500 && status !== 429
      await settleDispatch(sql, s, refused ? { status: 'refused', error: firstLine(error) } : { status: 'sent' })
      log.warn(refused ? 'GitHub refused a dispatch' : 'a dispatch may or may not have reached GitHub', {
        job: s.job,
        slot: s.slot.toISOString(),
        error: firstLine(error),
      })
      results.push({ ...s, outcome: refused ? 'refused' : 'unknown', detail: firstLine(error) })
    }
  }
  return results
}

/** One tick of `pnpm jobs dispatch`: what it needs beyond dispatchSlots. */
export interface TickOptions extends Omit<DispatchOptions, 'slots'> {
  schedules: readonly JobSchedule[]
  /** True for a job a pause holds now: its slot is not dispatched (its run would only record the pause). */
  isPaused?: (job: string) => boolean
  maxAgeMs?: number
}

/**
 * One dispatcher tick: re-enables the job workflows GitHub disabled for inactivity (a disabled workflow takes no
 * dispatch either), then dispatches every current slot not yet served, running or claimed.
 */
export async function dispatchTick(options: TickOptions): Promise<DispatchResult[]> {
  const slots = currentSlots(options.schedules, options.now, options.maxAgeMs).filter((s) => !options.isPaused?.(s.job))
  if (slots.length === 0) return []
  const workflows = [...(options.workflows ?? (await options.client.listWorkflows()))]
  const files = new Set(slots.map((s) => s.workflowFile))
  for (const [i, w] of workflows.entries()) {
    if (w.state !== 'disabled_inactivity' || !files.has(w.path.replace(/^\.\//, ''))) continue
    if (options.dryRun) {
      options.log.info('dry run: would re-enable a workflow GitHub disabled for inactivity', { workflow: w.path })
      continue
    }
    await options.client.enableWorkflow(w.id)
    options.log.warn('re-enabled a workflow GitHub disabled for inactivity', { workflow: w.path })
    workflows[i] = { ...w, state: 'active' }
  }
  return dispatchSlots({ ...options, slots, workflows })
}

/** The next time any schedule fires after `now` (when a looping dispatcher wakes), or undefined without schedules. */
export function nextSlotAfter(schedules: readonly JobSchedule[], now: Date): Date | undefined {
  let next: Date | undefined
  for (const s of schedules) {
    if (s.cron.length === 0) continue
    const at = nextRun(s, now)
    if (at && (!next || at < next)) next = at
  }
  return next
}
