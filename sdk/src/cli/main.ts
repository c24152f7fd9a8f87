import { secretVariables } from '../config/config.ts'
import { createMasker } from '../config/redact.ts'
import { parseCommandLine, wantsHelp } from '../runtime/args.ts'
import { isMainModule } from '../runtime/entry.ts'
import { ConfigError, toError } from '../runtime/errors.ts'
import { errorWithCauses } from '../runtime/finish.ts'
import { tolerateClosedOutput } from '../runtime/log.ts'
import { type Command, type CommandIO, DatabaseUnreachableError, renderCommandHelp } from './commands/command.ts'
import dispatch from './commands/dispatch.ts'
import doctor from './commands/doctor.ts'
import due from './commands/due.ts'
import history from './commands/history.ts'
import list from './commands/list.ts'
import migrateCommand from './commands/migrate.ts'
import newJob from './commands/new.ts'
import pause from './commands/pause.ts'
import psql from './commands/psql.ts'
import resume from './commands/resume.ts'
import retry from './commands/retry.ts'
import run from './commands/run.ts'
import schedule from './commands/schedule.ts'
import seedDemo from './commands/seed-demo.ts'
import status from './commands/status.ts'

/** Every `pnpm jobs` command; register new ones here. */
const commands: Command[] = [
  list,
  run,
  history,
  migrateCommand,
  seedDemo,
  pause,
  resume,
  schedule,
  status,
  retry,
  dispatch,
  doctor,
  due,
  newJob,
  psql,
]

function usage(): string {
  const width = Math.max(...commands.map((c) => c.usage.length))
  return [
    'usage: pnpm jobs <command> [flags]   (pnpm jobs <command> --help: its flags, settings and exit codes)',
    '',
    ...commands.map((c) => `  ${c.usage.padEnd(width)}  ${c.description}`),
  ].join('\n')
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: string[], io: CommandIO): Promise<number> {
  // --verbose (any command, before `--`): errors with their stack and causes, not only their message.
  const end = argv.indexOf('--')
  const verbose = argv.slice(0, end < 0 ? argv.length : end).includes('--verbose')
  const [name, ...args] = verbose ? argv.filter((a, i) => a !== '--verbose' || (end >= 0 && i > end)) : argv
  if (!name || name === '--help' || name === 'help' || name === '-h') {
    const topic = name === 'help' ? commands.find((c) => c.name === args[0]) : undefined
    io.stdout(topic ? renderCommandHelp(topic) : usage())
    return name ? 0 : 2
  }
  const command = commands.find((c) => c.name === name)
  if (!command) {
    io.stderr(`unknown command "${name}"\n\n${usage()}`)
    return 2
  }
  // `run <job-id> --help` is the job's help, answered by its script; `run --help` is this command's.
  const passed = command.passThrough && args[0] !== undefined && !args[0].startsWith('-')
  if (!passed && wantsHelp(args)) {
    io.stdout(renderCommandHelp(command))
    return 0
  }
  try {
    const line = command.passThrough
      ? { flags: {}, positional: args }
      : parseCommandLine(args, command.flags, { positionals: command.positionals })
    return await command.run(line, io)
  } catch (err) {
    const error = toError(err)
    const mask = createMasker(secretVariables.map((v) => io.env[v]).filter((v): v is string => !!v))
    if (error instanceof ConfigError) {
      io.stderr(`error: ${mask(error.message)}`)
      return 2
    }
    if (verbose) io.stderr(`error: ${mask(errorWithCauses(error))}`)
    else
      io.stderr(
        `error: ${mask(oneLine(error))}${error instanceof DatabaseUnreachableError ? '' : ' (--verbose: the stack)'}`,
      )
    return 1
  }
}

/** An error's message on one line (its first line; a bare error code gets its cause's message). */
function oneLine(error: Error): string {
  return (error.message || String(error.cause ?? error.name)).split('\n')[0]!
}

if (isMainModule(import.meta.url)) {
  // `pnpm jobs list | head -8`: the reader may leave early; the command still finishes (and `run` records its run).
  tolerateClosedOutput()
  const code = await main(process.argv.slice(2), {
    env: process.env,
    stdout: (s) => process.stdout.write(`${s}\n`),
    stderr: (s) => process.stderr.write(`${s}\n`),
    columns: process.stdout.isTTY ? process.stdout.columns : undefined,
  })
  process.exitCode = code
}
