import { defineBenchCase } from '../harness.ts'
import { runPurgeCase } from '../support/purge-case.ts'

export default defineBenchCase({
  description: 'cleanup/sessions on 2M rows (1M and 1% removable) vs one DELETE',
  async run(h) {
    const rows = Number(process.env.BENCH_PURGE_ROWS ?? 2_000_000)
    await runPurgeCase(h, { table: 'sessions', rows, share: 0.5, label: 'sessions 2M/1M', target: '≤ 1.0×' })
    await runPurgeCase(h, { table: 'sessions', rows, share: 0.01, label: 'sessions 2M/1%', target: '≤ 1.2×' })
  },
})
