import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { createLogger, ensureEmbedded, migrate } from '@admin-jobs/sdk/platform'
import postgres from 'postgres'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string
    /** A migrated database that createTestDatabase copies (CREATE DATABASE … TEMPLATE) instead of migrating anew. */
    templateDatabase: string
  }
}

/**
 * Provides a server URL to every test file (TEST_DATABASE_URL, or the shared embedded PostgreSQL under .data/) and a
 * migrated template database on it: copying it takes a fraction of running every migration once per test file.
 */
export default async function setup(project: TestProject) {
  const given = process.env.TEST_DATABASE_URL
  const embedded = given
    ? undefined
    : await ensureEmbedded({ dataDir: path.resolve('.data'), log: createLogger({ scope: 'test-setup' }) })
  const url = given ?? embedded!.url
  project.provide('adminUrl', url)
  // One per suite run (other runs may share the server, with other migrations): dropped when the run ends.
  const template = `aj_template_${randomBytes(4).toString('hex')}`
  const admin = postgres(url, { max: 1, onnotice: () => {} })
  try {
    await admin.unsafe(`create database ${template}`)
    const u = new URL(url)
    u.pathname = `/${template}`
    // No connection may stay open on a template while it is copied.
    const sql = postgres(u.toString(), { max: 1, onnotice: () => {} })
    try {
      await migrate(sql)
    } finally {
      await sql.end()
    }
  } finally {
    await admin.end()
  }
  project.provide('templateDatabase', template)
  return async () => {
    const drop = postgres(url, { max: 1, onnotice: () => {} })
    await drop.unsafe(`drop database if exists ${template} with (force)`).catch(() => {})
    await drop.end()
    await embedded?.release()
  }
}
