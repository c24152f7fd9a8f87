import path from 'node:path'
import { createLogger, ensureEmbedded } from '@admin-jobs/sdk/platform'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string
  }
}

/** Provides a server URL to every test file: TEST_DATABASE_URL, or the shared embedded PostgreSQL under .data/. */
export default async function setup(project: TestProject) {
  const url = process.env.TEST_DATABASE_URL
  if (url) {
    project.provide('adminUrl', url)
    return
  }
  const handle = await ensureEmbedded({ dataDir: path.resolve('.data'), log: createLogger({ scope: 'test-setup' }) })
  project.provide('adminUrl', handle.url)
  return async () => {
    await handle.release()
  }
}
