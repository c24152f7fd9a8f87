import fs from 'node:fs'
import path from 'node:path'
import { ConfigError } from '../../runtime/errors.ts'
import { loadSchedules, repoRoot } from '../../schedules/schedules.ts'
import { dueAt, loadSharedRunners, outputName } from '../../schedules/shared.ts'
import type { Command } from './command.ts'

/**
 * `pnpm jobs due [--at ISO] [--all] [--workflow FILE] [--json]`: which jobs of the shared runner are due in the tick
 * at `--at` (default ADMIN_JOBS_NOW, else now), from each job's own workflow schedule. On Actions it writes `<area>-<job>=true|false` and
 * `tick=<iso>` to GITHUB_OUTPUT, which the shared workflow's `if:` conditions read. `--all`: every job is due (a
 * manual run).
 */
const due: Command = {
  name: 'due',
  usage: 'due [--at ISO] [--all] [--workflow FILE] [--json]',
  description: "the shared runner's step: which of its jobs are due in this tick (from each job's own schedule)",
  flags: {
    at: {
      type: 'string',
      value: 'ISO',
      description: 'the instant whose tick is run (default ADMIN_JOBS_NOW, else now)',
    },
    all: { type: 'boolean', description: 'mark every job due (a manual run)' },
    workflow: {
      type: 'string',
      value: 'FILE',
      description: 'the shared workflow (default: the one workflow whose steps run several jobs)',
    },
    json: { type: 'boolean', description: 'print JSON instead of lines' },
  },
  settings: [
    { name: 'ADMIN_JOBS_NOW', kind: 'timestamp', description: 'pins the clock, as for the jobs' },
    { name: 'ADMIN_JOBS_ROOT', kind: 'directory', description: 'repository whose workflows are read' },
    {
      name: 'GITHUB_OUTPUT',
      kind: 'file',
      description: 'where tick=<iso> and <area>-<job>=true|false go, for the steps’ if: conditions',
    },
  ],
  async run({ flags }, io) {
    const root = path.resolve(io.env.ADMIN_JOBS_ROOT ?? repoRoot())
    // ADMIN_JOBS_NOW pins this clock as it pins the jobs' (replays and tests).
    const given = flags.at ?? io.env.ADMIN_JOBS_NOW
    const at = given === undefined ? new Date() : new Date(String(given))
    if (Number.isNaN(at.getTime()))
      throw new ConfigError(
        `${flags.at === undefined ? 'ADMIN_JOBS_NOW' : '--at'} must be a timestamp (got "${given}")`,
      )
    const runners = loadSharedRunners(root)
    const wanted = typeof flags.workflow === 'string' ? path.normalize(flags.workflow) : undefined
    const shared = wanted ? runners.find((r) => r.workflowFile === wanted) : runners[0]
    if (!shared || (!wanted && runners.length > 1)) {
      throw new ConfigError(
        wanted
          ? `${wanted} is not a workflow that runs several jobs`
          : runners.length
            ? `several workflows run several jobs (${runners.map((r) => r.workflowFile).join(', ')}): name one with --workflow`
            : 'no workflow runs several jobs: there is no shared runner',
      )
    }
    const tick = dueAt(shared, loadSchedules(root), at)
    const jobs = tick.jobs.map((j) => (flags.all ? { ...j, due: true } : j))
    if (flags.json) {
      io.stdout(
        JSON.stringify({ workflow: shared.workflowFile, tick: tick.tick, previous: tick.previous, jobs }, null, 2),
      )
    } else {
      io.stdout(
        `${shared.workflowFile}: tick ${tick.tick.toISOString()} (jobs due since ${tick.previous.toISOString()})`,
      )
      for (const j of jobs)
        io.stdout(
          `  ${j.job}: ${j.due ? `due${j.slot ? ` (its ${j.slot.toISOString()} run)` : ' (--all)'}` : 'not due'}`,
        )
    }
    const output = io.env.GITHUB_OUTPUT
    if (output) {
      const lines = [`tick=${tick.tick.toISOString()}`, ...jobs.map((j) => `${outputName(j.job)}=${j.due}`)]
      fs.appendFileSync(output, `${lines.join('\n')}\n`)
    }
    return 0
  },
}

export default due
