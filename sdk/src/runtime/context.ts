import { createIncidents } from '../alerting/incidents.ts'
import { connect, databaseAddress } from '../database/client.ts'
import type { StartedRun } from './run.ts'
import type { DatabaseInfo, JobContext, JobState } from './types.ts'

/** `load()` once, on first use: what a job never calls costs nothing at start-up. */
function once<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined
  return () => {
    loaded ??= load()
    return loaded
  }
}

/** The incidents of a run, written on the runner's pool (a stopped job's cancelled queries must not take them). */
export function incidentsOf(run: StartedRun) {
  return createIncidents({
    sql: run.control,
    config: run.config,
    log: run.log,
    job: run.id,
    runId: run.runId,
    runUrl: run.runUrl,
    dryRun: run.dryRun,
    now: run.now,
  })
}

/** The one argument a job's `run` gets: everything it may touch, scoped to this run. */
export function buildContext(run: StartedRun): JobContext<unknown> {
  const { log, dryRun, config } = run
  const incidents = incidentsOf(run)
  const notifier = once(async () =>
    (await import('../alerting/notices.ts')).createNotifier({
      sql: run.control,
      config,
      log,
      job: run.id,
      runId: run.runId,
      dryRun,
    }),
  )
  const state = once(async () => (await import('../records/state.ts')).createState(run.db.sql, run.id, dryRun))
  const jobState: JobState = {
    get: async (key) => (await state()).get(key),
    set: async (key, value, tx) => (await state()).set(key, value, tx),
  }
  return {
    job: run.id,
    sql: run.db.sql,
    database: databaseInfo(run),
    log,
    alert: incidents.alert,
    resolveAlert: incidents.resolve,
    observe: incidents.observe,
    observeDatabase: async (probe) =>
      (await import('../alerting/database-outage.ts')).observeDatabase({
        config,
        log,
        ...probe,
        now: run.now(),
        job: run.id,
        runUrl: run.runUrl,
        dryRun,
        // While the database answers, its incident's notices go through the outbox like any other.
        send: async (kind, notice) => {
          await incidents.announce(kind, { ...notice, key: notice.dedupeKey })
          return { delivered: ['outbox'], failed: [] }
        },
      }),
    incidents: { get: incidents.get, open: incidents.open, retire: incidents.retire },
    notify: async (notice, tx) => (await notifier())(notice, tx),
    signal: run.deadline.signal,
    dryRun,
    config,
    settings: run.settings,
    flags: run.flags,
    state: jobState,
    summary: run.summary,
    run: {
      id: run.runId,
      attempt: run.attempt,
      trigger: run.trigger,
      url: run.runUrl,
      startedAt: run.startedAt,
      deadline: run.deadline.at,
      clockPinned: !!run.env.ADMIN_JOBS_NOW,
    },
    now: run.now,
  }
}

function databaseInfo(run: StartedRun): DatabaseInfo {
  const { url, embedded } = run.db
  const { host, port, database } = databaseAddress(url)
  const user = decodeURIComponent(new URL(url).username)
  return {
    url,
    host,
    port,
    name: database,
    user,
    embedded,
    connect: (options = {}) =>
      connect(url, {
        max: options.max ?? 1,
        applicationName: options.applicationName ?? `${run.applicationName}:probe`,
        connectTimeoutMs: options.connectTimeoutMs,
      }),
  }
}
