import { jobScript } from '../../project/registry.ts'
import { activePauses, pauseFor, resumeJobs } from '../../records/pauses.ts'
import { ConfigError } from '../../runtime/errors.ts'
import { type Command, databaseSettings, withDatabase } from './command.ts'

/** `pnpm jobs resume [<job-id|all>]`: ends the pause of one target, or every pause when none is named. */
const resume: Command = {
  name: 'resume',
  usage: 'resume [<job-id|all>]',
  description: 'end maintenance mode (every pause, or the one named)',
  flags: {},
  positionals: true,
  settings: databaseSettings,
  async run({ positional }, io) {
    if (positional.length > 1) throw new ConfigError('usage: pnpm jobs resume [<job-id|all>]')
    const target = positional[0]
    // An unknown job id is a usage error (exit 2), as for pause and run.
    if (target && target !== 'all') jobScript(target)
    const { ended, remaining } = await withDatabase(io, async (sql) => ({
      ended: await resumeJobs(sql, target),
      remaining: await activePauses(sql),
    }))
    if (ended.length === 0) io.stdout(target ? `${target} was not paused` : 'no job was paused')
    for (const p of ended) io.stdout(`resumed ${p.target === 'all' ? 'all jobs' : p.target}`)
    const still = target && target !== 'all' ? pauseFor(target, remaining) : undefined
    if (still) io.stdout(`${target} is still paused by the pause of all jobs (pnpm jobs resume all)`)
    return 0
  },
}

export default resume
