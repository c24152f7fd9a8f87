export * from './probes.ts'
export * from './watchdog.ts'
export * from './workflows.ts'
