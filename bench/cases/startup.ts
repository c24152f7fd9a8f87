import { median } from '@admin-jobs/sdk/platform'
import { defineBenchCase } from '../harness.ts'

const runs = 7

// The start-up target: a no-op job (connect, lock, history row, exit) within 1.3× of bare `node --import tsx`.
export default defineBenchCase({
  description: 'no-op job start-to-exit vs node --import tsx of an empty file (median of 7)',
  async run(h) {
    const db = await h.createDatabase('startup')
    // One warm-up each so the first measured run does not pay for cold file caches.
    await h.runJob('bench/fixtures/empty.ts')
    await h.runJob('bench/fixtures/scripts/bench/noop.ts', { db })
    const job: number[] = []
    const bare: number[] = []
    const rss: number[] = []
    for (let i = 0; i < runs; i++) {
      bare.push((await h.runJob('bench/fixtures/empty.ts')).wallMs)
      const run = await h.runJob('bench/fixtures/scripts/bench/noop.ts', { db })
      job.push(run.wallMs)
      rss.push(run.peakRssMb)
    }
    const last = await h.lastRun(db, 'bench/noop')
    if (last?.status !== 'succeeded')
      throw new Error(`the no-op job did not record a succeeded run (got ${last?.status})`)
    h.report({
      case: 'start-up (no-op job)',
      metric: 'wall ms',
      job: median(job) ?? 0,
      baseline: median(bare),
      target: '≤ 1.3×',
      peakRssMb: median(rss),
    })
  },
})
