import { defineBenchCase } from '../harness.ts'
import { archiveRun, fillAudit } from '../support/audit-case.ts'

export default defineBenchCase({
  description: 'cleanup/audit-logs peak RSS: 1M vs 4M time-ordered rows, 75% past retention',
  async run(h) {
    const now = new Date()
    const small = Number(process.env.BENCH_AUDIT_MEMORY_ROWS ?? 1_000_000)
    const runs: Record<number, Awaited<ReturnType<typeof archiveRun>>> = {}
    for (const rows of [small, small * 4]) {
      const db = await h.createDatabase(`audit_mem_${rows}`)
      h.log(`generating ${rows.toLocaleString('en-US')} audit rows (time-ordered)`)
      await fillAudit(db, rows, now, 'time')
      await h.settle(db, 'audit_logs')
      runs[rows] = await archiveRun(h, db, now)
      h.report({
        case: `audit ${rows / 1e6}M`,
        layout: 'time-ordered',
        metric: 'longest tx ms',
        job: runs[rows]!.stats.longestTransactionMs,
        target: '≤ 250',
        peakRssMb: runs[rows]!.peakRssMb,
        note: `archive ${runs[rows]!.stats.durationMs} ms, ${runs[rows]!.stats.batches} batches`,
      })
    }
    h.report({
      case: `audit RSS ${small / 1e6}M vs ${(small * 4) / 1e6}M`,
      layout: 'time-ordered',
      metric: 'peak RSS MB',
      job: runs[small * 4]!.peakRssMb,
      baseline: runs[small]!.peakRssMb,
      target: '≤ 1.15×',
      note: 'job = 4× rows, baseline = 1× rows',
    })
  },
})
