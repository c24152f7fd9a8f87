import fs from 'node:fs/promises'
import type { RunHook } from '../hooks.ts'
import { renderRunSummary } from '../summary.ts'

/** On Actions: the run's markdown summary (GITHUB_STEP_SUMMARY) and the step outputs `status` and `stats`. */
export const summaryHook: RunHook = {
  name: 'Actions summary',
  async skipped(run) {
    await writeSummary(
      run.env.GITHUB_STEP_SUMMARY,
      run.core !== undefined,
      renderRunSummary({ job: run.id, status: 'skipped', durationMs: 0, dryRun: run.dryRun, runUrl: run.runUrl }),
    )
  },
  async finished(run, outcome) {
    if (!run.core) return
    // The summary is a file, not a log line: Actions' masking does not reach it, so mask it here.
    const markdown = renderRunSummary({
      job: run.id,
      status: outcome.status,
      durationMs: outcome.durationMs,
      dryRun: run.dryRun,
      runUrl: run.runUrl,
      stats: outcome.stats,
      error: outcome.error,
      parts: run.summary.parts,
    })
    await writeSummary(run.env.GITHUB_STEP_SUMMARY, true, run.mask(markdown))
    run.core.setOutput('status', outcome.status)
    run.core.setOutput('stats', JSON.stringify(outcome.stats))
  },
}

async function writeSummary(file: string | undefined, onActions: boolean, markdown: string): Promise<void> {
  if (!onActions || !file) return
  await fs.appendFile(file, `${markdown}\n`)
}
