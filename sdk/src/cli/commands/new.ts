import { scaffoldJob } from '../../project/scaffold.ts'
import { ConfigError } from '../../runtime/errors.ts'
import { describeSchedule } from '../../schedules/schedules.ts'
import type { Command } from './command.ts'

/** `pnpm jobs new <area>/<job> [--cron "<expr>"] [--critical]`: scaffolds a job's script, workflow and test. */
const newJob: Command = {
  name: 'new',
  usage: 'new <area>/<job> [--cron "<expr>"] [--critical]',
  description: 'scaffold a job: script, workflow, test',
  flags: {
    cron: { type: 'string', description: 'its schedule, 5-field cron in UTC (default: daily at 04:MM)' },
    critical: { type: 'boolean', description: 'a failure alerts (critical: true in its definition)' },
  },
  positionals: true,
  exitCodes: [
    { code: '2', meaning: 'bad job id or cron, the job exists already, or one of its files does (nothing written)' },
  ],
  notes: [
    'Writes scripts/<area>/<job>.ts, .github/workflows/<area>-<job>.yml and test/<area>-<job>.test.ts; never overwrites.',
  ],
  async run({ positional, flags }, io) {
    if (positional.length !== 1)
      throw new ConfigError('usage: pnpm jobs new <area>/<job> [--cron "<expr>"] [--critical]')
    if (flags.cron !== undefined && typeof flags.cron !== 'string') throw new ConfigError('--cron needs a value')
    const made = scaffoldJob({ id: positional[0]!, cron: flags.cron, critical: flags.critical === true })
    io.stdout(
      [
        `created ${made.id} (${made.cron}: ${describeSchedule({ cron: [made.cron], timezone: undefined })}):`,
        `  ${made.script}`,
        `  ${made.workflow}`,
        `  ${made.test}`,
        '',
        `next: write its work in ${made.script}, then run npx vitest run ${made.test} test/workflows-policy.test.ts`,
      ].join('\n'),
    )
    return 0
  },
}

export default newJob
