import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { parseConfig } from '../../config/config.ts'
import { redactUrl } from '../../config/redact.ts'
import { ConfigError } from '../../runtime/errors.ts'
import { createLogger } from '../../runtime/log.ts'
import { type Command, type CommandIO, databaseSettings, describeDatabase, openCommandDatabase } from './command.ts'

/** The first executable `name` on `PATH`, or undefined. */
export function findOnPath(name: string, pathVariable: string | undefined): string | undefined {
  for (const dir of (pathVariable ?? '').split(path.delimiter)) {
    if (!dir) continue
    const file = path.join(dir, name)
    try {
      fs.accessSync(file, fs.constants.X_OK)
      if (fs.statSync(file).isFile()) return file
    } catch {}
  }
  return undefined
}

/** How to get psql, for the message when it is missing. */
export const psqlInstallHint =
  'install the PostgreSQL client: Debian/Ubuntu `sudo apt-get install postgresql-client`, Fedora `sudo dnf install postgresql`, macOS `brew install libpq`'

/**
 * `pnpm jobs psql [psql arguments]`: psql on the configured database, the embedded one included (started or joined
 * as every command does, and kept up while psql runs). Exits with psql's code.
 */
const psql: Command = {
  name: 'psql',
  usage: 'psql [psql arguments]',
  description: 'open psql on the configured database (the embedded one too); arguments go to psql',
  flags: {},
  passThrough: true,
  settings: [...databaseSettings, { name: 'PATH', kind: 'directories', description: 'where psql is looked for' }],
  notes: [
    'Arguments go to psql as they are: `pnpm jobs psql -c "select * from jobs.runs order by id desc limit 5"`.',
    'Without psql on PATH it says how to install it and prints the URL (its password redacted, unless embedded).',
  ],
  exitCodes: [
    {
      code: '2',
      meaning:
        'usage or configuration error: a malformed setting, or psql not installed (the message says how to get it)',
    },
    { code: 'other', meaning: 'psql ran: its own exit code' },
  ],
  async run({ positional: args }, io) {
    const config = parseConfig(io.env)
    const binary = findOnPath('psql', io.env.PATH)
    const log = createLogger({ scope: 'jobs', secrets: config.secrets, write: (_s, line) => io.stderr(line) })
    if (!binary) {
      // The embedded server's URL is only good while it runs: start it to name its port, and say so.
      if (!config.databaseUrl) {
        const db = await openCommandDatabase(config, log)
        await db.close()
        // Printed here, not thrown: an error's text has every URL password masked, and this one is local and ours.
        io.stderr(`error: psql is not installed (not on PATH); ${psqlInstallHint}.`)
        io.stdout(
          `The embedded database: ${db.url}\n(it runs only while a command uses it: with psql installed, \`pnpm jobs psql\` keeps it up for the session)`,
        )
        return 2
      }
      throw new ConfigError(
        `psql is not installed (not on PATH); ${psqlInstallHint}.\nThe database: ${redactUrl(config.databaseUrl)}`,
      )
    }
    const db = await openCommandDatabase(config, log)
    try {
      io.stderr(`psql on ${db.embedded ? `the embedded database (${db.url})` : describeDatabase(config)}`)
      return await runPsql(binary, db.url, args, io)
    } finally {
      await db.close()
    }
  },
}

/** Runs psql on `url` with the terminal (stdio inherited); the password travels in PGPASSWORD, not in argv. */
async function runPsql(binary: string, url: string, args: readonly string[], io: CommandIO): Promise<number> {
  const u = new URL(url)
  const password = decodeURIComponent(u.password)
  u.password = ''
  const env: NodeJS.ProcessEnv = { ...(io.env as NodeJS.ProcessEnv), ...(password ? { PGPASSWORD: password } : {}) }
  delete env.DATABASE_URL
  const child = spawn(binary, [u.toString(), ...args], { env, stdio: 'inherit' })
  // Ctrl-C belongs to psql (it cancels the query); this process waits for psql to end.
  const ignore = () => {}
  process.on('SIGINT', ignore)
  const onTerm = () => child.kill('SIGTERM')
  process.on('SIGTERM', onTerm)
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (code, signal) =>
        resolve(code ?? (signal === 'SIGTERM' ? 143 : signal === 'SIGINT' ? 130 : 1)),
      )
    })
  } finally {
    process.off('SIGINT', ignore)
    process.off('SIGTERM', onTerm)
  }
}

export default psql
