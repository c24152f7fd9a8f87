/** The process exit codes of a run (docs/reference.md, "Exit codes"). */
export const exitCodes = {
  succeeded: 0,
  skipped: 0,
  failed: 1,
  config: 2,
  timed_out: 124,
  SIGINT: 130,
  SIGTERM: 143,
} as const
