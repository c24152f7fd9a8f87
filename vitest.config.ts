import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 4,
    // @actions/workflow-parser imports JSON without an import attribute: let Vite transform it (test/workflows-*).
    server: { deps: { inline: ['@actions/workflow-parser'] } },
    reporters:
      process.env.CI === 'true' ? ['default', ['json', { outputFile: '.data/vitest-report.json' }]] : ['default'],
  },
})
