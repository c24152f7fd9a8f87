import { findPause, pauseNote } from '../../records/pauses.ts'
import type { RunHook } from '../hooks.ts'

/** Maintenance mode: a paused job ends `skipped` with the pause's reason (exit 0) before it starts. */
export const pauseHook: RunHook = {
  name: 'pause',
  async beforeStart(run) {
    const pause = await findPause(run.control, run.id, run.job.exemptFromPauseAll !== undefined)
    return pause ? pauseNote(pause) : undefined
  },
}
