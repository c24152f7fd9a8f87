import path from 'node:path'
import type { TestProject } from 'vitest/node'
import { ensureEmbedded } from '../../sdk/src/database/embedded.ts'
import { createLogger } from '../../sdk/src/runtime/log.ts'

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
