import fs from 'node:fs/promises'
import { defineBenchCase } from '../harness.ts'
import { archiveRun, copyToGzip, fillAudit, lineSql, tempOut } from '../support/audit-case.ts'

const day = 86_400_000

export default defineBenchCase({
  description:
    'cleanup/audit-logs: 2M rows, 1.5M past retention, time-ordered and random, vs one-statement move + COPY | gzip -1',
  async run(h) {
    const now = new Date()
    const cutoff = new Date(now.getTime() - 90 * day)
    const rows = Number(process.env.BENCH_AUDIT_ROWS ?? 2_000_000)
    const layouts = (process.env.BENCH_AUDIT_ORDER ?? 'time,random').split(',') as ('time' | 'random')[]
    for (const order of layouts) {
      const layout = order === 'time' ? 'time-ordered' : 'random order'
      const source = await h.createDatabase(`audit_${order}`)
      h.log(`generating ${rows.toLocaleString('en-US')} audit rows (${layout})`)
      await fillAudit(source, rows, now, order)
      const baseDb = await h.cloneDatabase(source, `audit_${order}_base`)
      await h.settle(baseDb, 'audit_logs')
      const move = await h.time(
        () => baseDb.sql`
          with moved as (delete from audit_logs where occurred_at < ${cutoff}
            returning id, occurred_at, actor_id, action, target_type, target_id, ip, user_agent, metadata)
          insert into jobs.audit_logs_archive (id, occurred_at, actor_id, action, target_type, target_id, ip, user_agent, metadata)
          select * from moved`,
      )
      const out = tempOut(order)
      const copy = await h.time(() =>
        copyToGzip(baseDb.url, `select ${lineSql} from jobs.audit_logs_archive order by occurred_at, id`, out),
      )
      await fs.rm(out, { force: true })
      const baseline = move.ms + copy.ms
      await h.settle(source, 'audit_logs')
      const job = await archiveRun(h, source, now)
      if (job.stats.archived !== move.value.count)
        throw new Error(`the job archived ${job.stats.archived}, the baseline ${move.value.count}`)
      const label = `audit ${rows / 1e6}M/${(move.value.count / 1e6).toFixed(2)}M`
      h.report({
        case: label,
        layout,
        metric: 'archive ms',
        job: job.stats.durationMs,
        baseline,
        target: '≤ 1.0×',
        peakRssMb: job.peakRssMb,
        note: `${job.stats.strategy}, ${job.stats.batches} batches, ${job.stats.files?.length} month files; baseline move ${Math.round(move.ms)} + copy ${Math.round(copy.ms)}`,
      })
      h.report({
        case: label,
        layout,
        metric: 'process wall ms',
        job: job.wallMs,
        baseline,
        note: 'incl. node start-up',
      })
      h.report({ case: label, layout, metric: 'longest tx ms', job: job.stats.longestTransactionMs, target: '≤ 250' })
    }
  },
})
