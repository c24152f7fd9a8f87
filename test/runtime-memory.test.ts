import { describe, expect, it } from 'vitest'
import { youngGenerationCapBytes } from '../sdk/src/runtime/main.ts'
import { createTestDatabase } from './support/db.ts'
import { runScript } from './support/run.ts'

// A job's peak memory must not grow with its run's length. V8 grows its young generation as objects survive, up to
// 32 MB; a job process caps it (sdk/src/runtime/main.ts). Processes, because the cap is process-wide.
const probe = 'test/fixtures/probes/young-generation.ts'

describe('the young generation of a job process', () => {
  it('grows to 32 MB over a long churn without the cap, and stays within one doubling of the cap with it', async () => {
    const [free, capped] = await Promise.all([
      runScript(probe, { args: ['free'] }),
      runScript(probe, { args: ['capped'] }),
    ])
    expect(free.code, free.stderr).toBe(0)
    expect(capped.code, capped.stderr).toBe(0)
    expect(Number(free.stdout)).toBe(32 * 1024 * 1024)
    expect(Number(capped.stdout)).toBeGreaterThanOrEqual(youngGenerationCapBytes)
    expect(Number(capped.stdout)).toBeLessThanOrEqual(2 * youngGenerationCapBytes)
  })

  it('is capped when a job script is run as a process', async () => {
    const db = await createTestDatabase('runtime_memory')
    const result = await runScript('test/fixtures/scripts/test/churn.ts', { env: { DATABASE_URL: db.url } })
    expect(result.code, result.output).toBe(0)
    const [run] = await db.sql<{ stats: { youngGenerationBytes: number } }[]>`
      select stats from jobs.runs where job = 'test/churn' order by started_at desc limit 1`
    expect(run?.stats.youngGenerationBytes).toBeGreaterThanOrEqual(youngGenerationCapBytes)
    expect(run?.stats.youngGenerationBytes).toBeLessThanOrEqual(2 * youngGenerationCapBytes)
  })
})
