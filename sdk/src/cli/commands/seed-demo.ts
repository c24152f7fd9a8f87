import { type Command, databaseSettings, positiveInt, withDatabase } from './command.ts'

/**
 * `pnpm jobs seed-demo [--seed N] [--force]`: fills the admin tables with realistic, deterministic demo data. Tables
 * holding data that is not demo data are left alone unless `--force`.
 */
const seedDemo: Command = {
  name: 'seed-demo',
  usage: 'seed-demo [--seed N] [--force]',
  description: 'realistic demo data (embedded or DATABASE_URL)',
  flags: {
    seed: {
      type: 'string',
      value: 'N',
      description: 'seed of the generator: the same seed gives the same data (default 1)',
    },
    force: { type: 'boolean', description: 'also fill tables that hold data that is not demo data' },
  },
  settings: databaseSettings,
  async run({ flags }, io) {
    const seed = positiveInt(flags.seed, 'seed', 1)
    const { seedDemo: fill } = await import('../../dev/seed.ts')
    const counts = await withDatabase(io, (sql) => fill(sql, { seed, force: flags.force === true }))
    io.stdout(
      `seeded demo data (seed ${seed}): ${Object.entries(counts as Record<string, number>)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    )
    return 0
  },
}

export default seedDemo
