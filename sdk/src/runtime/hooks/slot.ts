import { servedSlot } from '../../records/runs.ts'
import type { RunHook } from '../hooks.ts'
import { slotTriggers } from '../slot.ts'

/**
 * Exactly one run per slot: a run started by GitHub's schedule, by `pnpm jobs dispatch` or by the local scheduler
 * for a slot that already has a succeeded run ends `skipped`, naming the slot and that run. Re-runs, manual
 * dispatches and local runs always run.
 */
export const slotHook: RunHook = {
  name: 'schedule slot',
  async beforeStart(run) {
    if (!run.slot || !slotTriggers.includes(run.trigger) || run.dryRun) return undefined
    const served = await servedSlot(run.control, run.id, run.slot)
    if (!served) return undefined
    const slot = run.slot.toISOString()
    return {
      note: `slot ${slot} already served by run ${served.id}`,
      stats: { slot, servedBy: served.id },
    }
  },
}
