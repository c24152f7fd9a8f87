import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll } from 'vitest'
import { root } from './run.ts'

/** One workflow of a test repository root: a job id, its crons and an optional timezone. */
export interface TestWorkflow {
  job: string
  cron: string[]
  timezone?: string
}

/** A scratch repository root under `.data/` (so job scripts there resolve the workspace's packages). */
export interface OpsRoot {
  dir: string
  writeWorkflows(workflows: readonly TestWorkflow[]): void
  /** Writes `scripts/<job>.ts` with the given source. */
  writeScript(job: string, source: string): void
}

/** Creates a scratch root with `.github/workflows` and `scripts`, removed after the test file. */
export function createOpsRoot(label: string): OpsRoot {
  const dir = path.join(root, '.data', `ops-${label}-${randomBytes(4).toString('hex')}`)
  const workflows = path.join(dir, '.github', 'workflows')
  fs.mkdirSync(workflows, { recursive: true })
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
  return {
    dir,
    writeWorkflows(list) {
      for (const f of fs.readdirSync(workflows)) fs.rmSync(path.join(workflows, f))
      for (const w of list) {
        const schedule = w.cron
          .map((c) => `    - cron: '${c}'${w.timezone ? `\n      timezone: ${w.timezone}` : ''}`)
          .join('\n')
        fs.writeFileSync(
          path.join(workflows, `${w.job.replace('/', '-')}.yml`),
          [
            `name: ${w.job}`,
            'on:',
            ...(schedule ? ['  schedule:', schedule] : []),
            '  workflow_dispatch:',
            'jobs:',
            '  run:',
            '    runs-on: ubuntu-latest',
            '    steps:',
            `      - run: pnpm tsx scripts/${w.job}.ts`,
            '',
          ].join('\n'),
        )
      }
    },
    writeScript(job, source) {
      const file = path.join(dir, 'scripts', `${job}.ts`)
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(file, source)
    },
  }
}
