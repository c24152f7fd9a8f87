import { randomBytes } from 'node:crypto'
import { migrate } from '@admin-jobs/sdk/platform'
import postgres, { type Sql } from 'postgres'
import { afterAll, inject } from 'vitest'

/** A fresh, migrated database for one test file, dropped after the file. */
export interface TestDatabase {
  url: string
  sql: Sql
  name: string
}

/** The server every test file shares (TEST_DATABASE_URL, or the embedded PostgreSQL). */
export function serverUrl(): string {
  return inject('adminUrl')
}

/** Returns `url` with its database replaced by `name`. */
export function withDatabase(url: string, name: string): string {
  const u = new URL(url)
  u.pathname = `/${name}`
  return u.toString()
}

// Databases created by this file, dropped after it. The hook is registered when the test file imports this module:
// an afterAll registered later, from inside beforeAll or a test, is silently never run (the databases leaked).
const created: { name: string; sql: Sql }[] = []
afterAll(async () => {
  for (const { name, sql } of created.splice(0)) {
    await sql.end({ timeout: 5 })
    const drop = postgres(serverUrl(), { max: 1, onnotice: () => {} })
    await drop.unsafe(`drop database if exists ${name} with (force)`).catch(() => {})
    await drop.end()
  }
})

/**
 * Creates a database named after `label` (plus random suffix), migrated (a copy of the suite's migrated template) or
 * empty (`migrate: false`), and drops it after the file.
 */
export async function createTestDatabase(label = 'test', options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `aj_${label.replace(/\W/g, '_').slice(0, 30)}_${randomBytes(4).toString('hex')}`.toLowerCase()
  const template = options.migrate === false ? undefined : inject('templateDatabase')
  const admin = postgres(serverUrl(), { max: 1, onnotice: () => {} })
  await admin.unsafe(template ? `create database ${name} template ${template}` : `create database ${name}`)
  await admin.end()
  const url = withDatabase(serverUrl(), name)
  const sql = postgres(url, { max: 4, onnotice: () => {} })
  created.push({ name, sql })
  if (options.migrate !== false && !template) await migrate(sql)
  return { url, sql, name }
}
