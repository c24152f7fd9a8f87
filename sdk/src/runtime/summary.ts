import type { RunStatus } from '../records/runs.ts'
import { formatMs } from '../text/duration.ts'
import { markdownTable } from '../text/markdown.ts'
import { firstLine } from './errors.ts'
import type { Summary } from './types.ts'

const icons: Record<RunStatus, string> = {
  running: '⏳',
  succeeded: '✅',
  failed: '❌',
  timed_out: '⏱️',
  cancelled: '🛑',
  skipped: '⏭️',
}

/** Renders the markdown job summary of one run: outcome, duration, dry-run, stats, error, then the job's own parts. */
export function renderRunSummary(run: {
  job: string
  status: RunStatus
  durationMs: number
  dryRun: boolean
  runUrl?: string
  stats?: Record<string, unknown>
  error?: Error
  parts?: readonly string[]
}): string {
  const lines = [
    `### ${icons[run.status]} ${run.job}: ${run.status.replace('_', ' ')}${run.dryRun ? ' (dry run)' : ''}`,
    '',
    '| | |',
    '| --- | --- |',
    `| Outcome | ${run.status} |`,
    `| Duration | ${formatMs(run.durationMs)} |`,
    `| Dry run | ${run.dryRun ? 'yes' : 'no'} |`,
  ]
  for (const [key, value] of Object.entries(run.stats ?? {})) {
    lines.push(`| ${key} | ${typeof value === 'object' ? `\`${JSON.stringify(value)}\`` : String(value)} |`)
  }
  if (run.error) lines.push('', `> **Error:** ${firstLine(run.error).replace(/\n/g, ' ')}`)
  if (run.parts?.length) lines.push('', ...run.parts.flatMap((p) => [p, '']))
  return lines.join('\n')
}

/** Collects the markdown a job adds to its run's summary. */
export function createSummary(): Summary {
  const parts: string[] = []
  return {
    parts,
    add: (markdown) => void parts.push(markdown),
    table(rows) {
      if (rows.length) parts.push(markdownTable(rows))
    },
  }
}
