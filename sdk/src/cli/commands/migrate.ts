import { migrate } from '../../database/migrate.ts'
import { createLogger } from '../../runtime/log.ts'
import { type Command, databaseSettings, withDatabase } from './command.ts'

/** `pnpm jobs migrate`: applies pending migrations to DATABASE_URL (or the embedded database). */
const migrateCommand: Command = {
  name: 'migrate',
  usage: 'migrate',
  description: 'apply migrations to DATABASE_URL',
  flags: {},
  settings: databaseSettings,
  async run(_args, io) {
    const log = createLogger({ scope: 'migrate', write: (_s, line) => io.stdout(line) })
    const applied = await withDatabase(io, (sql) => migrate(sql, { log }), { migrate: false })
    io.stdout(applied.length ? `applied ${applied.length} migration(s)` : 'database is up to date')
    return 0
  },
}

export default migrateCommand
