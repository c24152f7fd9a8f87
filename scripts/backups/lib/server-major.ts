// Prints the major version of the admin database's server (e.g. `15`), for the backup workflow to install a pg_dump
// at least as new before the job runs. It reads DATABASE_URL from its environment, so the URL (and its password) stays
// off every command line, where psql "$DATABASE_URL" would put it for `ps` to show.
import { isMainModule } from '@admin-jobs/sdk/platform'
import postgres from 'postgres'

/** The server's major version (`server_version_num` / 10000), read on one short-lived connection. */
export async function serverMajor(url: string): Promise<number> {
  const sql = postgres(url, { max: 1, connect_timeout: 30, onnotice: () => {} })
  try {
    const [row] = await sql<{ major: number }[]>`select current_setting('server_version_num')::int / 10000 as major`
    return row!.major
  } finally {
    await sql.end({ timeout: 5 })
  }
}

if (isMainModule(import.meta.url)) {
  const url = process.env.DATABASE_URL
  if (!url) {
    process.stderr.write('DATABASE_URL is not set\n')
    process.exitCode = 2
  } else {
    serverMajor(url).then(
      (major) => process.stdout.write(`${major}\n`),
      (err: Error & { code?: string }) => {
        // The driver's message names host and port at most, never the password.
        process.stderr.write(`cannot read the server version: ${err.code ?? ''} ${err.message}\n`)
        process.exitCode = 1
      },
    )
  }
}
