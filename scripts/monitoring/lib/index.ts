export * from './probes.ts'
export * from './verdicts.ts'
export * from './watchdog.ts'
export * from './workflows.ts'
