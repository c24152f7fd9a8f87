import { type ChildProcess, spawn } from 'node:child_process'
import path from 'node:path'
import { Cron } from 'croner'
import type { Env } from '../config/config.ts'
import { ConfigError } from '../runtime/errors.ts'
import type { Logger } from '../runtime/log.ts'
import { describeSchedule, type JobSchedule, scheduleEntries } from '../schedules/schedules.ts'
import { formatMs } from '../text/duration.ts'

/** Options of startScheduler; defaults: drain 5 minutes, child output to this process's stdout/stderr. */
export interface SchedulerOptions {
  /** Repository root: job scripts are `<root>/scripts/<job>.ts`, run with `<root>` as working directory. */
  root: string
  schedules: readonly JobSchedule[]
  /** The environment every child gets (plus ADMIN_JOBS_TRIGGER=scheduler). */
  env: Env
  log: Logger
  /** Where child output lines go. */
  output?: (stream: 'out' | 'err', line: string) => void
}

/** A running local scheduler. */
export interface Scheduler {
  /** Jobs running now, by job id. */
  readonly running: ReadonlyMap<string, ChildProcess>
  /** Starts a job now unless it is already running; false when it was. */
  launch(job: string): boolean
  /**
   * Stops scheduling and waits for running jobs to finish; after `drainMs` (default 5m) they get SIGTERM.
   * Resolves once no child is left. Calling it again (a second signal) sends SIGTERM at once.
   */
  stop(options?: { drainMs?: number }): Promise<void>
}

const outcomes: Record<number, string> = {
  0: 'succeeded',
  1: 'failed',
  2: 'configuration error',
  124: 'timed out',
  130: 'interrupted (SIGINT)',
  143: 'interrupted (SIGTERM)',
}

/**
 * Runs every job on its workflow's crons (croner, in the schedule's timezone; 6-field second patterns are accepted
 * for tests), each as a child process `node --import tsx scripts/<job>.ts`, never two of one job at once.
 */
export function startScheduler(options: SchedulerOptions): Scheduler {
  const { log } = options
  const running = new Map<string, ChildProcess>()
  const finished = new Set<() => void>()
  const output =
    options.output ??
    ((stream: 'out' | 'err', line: string) => (stream === 'out' ? process.stdout : process.stderr).write(`${line}\n`))
  let stopping = false

  const launch = (job: string): boolean => {
    if (stopping) return false
    const current = running.get(job)
    if (current) {
      log.warn(`${job} is still running; this start is skipped`, { pid: current.pid })
      return false
    }
    const script = path.join(options.root, 'scripts', `${job}.ts`)
    const startedAt = Date.now()
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: options.root,
      env: { ...options.env, ADMIN_JOBS_TRIGGER: 'scheduler' } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: a signal to the scheduler's group (Ctrl-C, pnpm relaying SIGTERM) must not reach
      // running jobs, which the scheduler drains instead.
      detached: true,
    })
    running.set(job, child)
    log.info(`started ${job}`, { pid: child.pid })
    forwardLines(child.stdout!, (line) => output('out', line))
    forwardLines(child.stderr!, (line) => output('err', line))
    let reported = false
    const done = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      if (reported) return
      reported = true
      running.delete(job)
      // The run's duration is its completion line's (history's); this is the whole process, start-up included, so
      // it is named as such rather than passed off as the run's.
      const fields = { exit: code ?? signal ?? undefined, process: formatMs(Date.now() - startedAt) }
      if (error) log.error(`${job} could not start: ${error.message}`)
      else if (code === 0) log.info(`${job} succeeded`, fields)
      else log.error(`${job} ${code === null ? `killed by ${signal}` : (outcomes[code] ?? 'failed')}`, fields)
      for (const notify of finished) notify()
    }
    child.once('error', (err) => done(null, null, err))
    child.once('close', (code, signal) => done(code, signal))
    return true
  }

  const made: Cron[] = []
  const entries = options.schedules.flatMap((schedule) =>
    scheduleEntries(schedule).map(({ cron: pattern, timezone }) => {
      try {
        const cron = new Cron(pattern, { timezone, mode: '5-or-6-parts', catch: true }, () => {
          launch(schedule.job)
        })
        made.push(cron)
        return { job: schedule.job, cron }
      } catch (err) {
        for (const started of made) started.stop()
        throw new ConfigError(
          `${schedule.workflowFile}: cannot schedule "${pattern}"${timezone ? ` in ${timezone}` : ''}: ${(err as Error).message}`,
          { cause: err },
        )
      }
    }),
  )
  const crons = entries.map((e) => e.cron)

  for (const schedule of options.schedules) {
    const next = entries
      .filter((e) => e.job === schedule.job)
      .map((e) => e.cron.nextRun())
      .filter((d): d is Date => d !== null)
      .sort((a, b) => a.getTime() - b.getTime())[0]
    log.info(`${schedule.job}: ${schedule.cron.join(', ')} (${describeSchedule(schedule)})`, {
      next: next?.toISOString(),
    })
  }

  let terminate: (() => void) | undefined
  return {
    running,
    launch,
    async stop(stopOptions = {}) {
      if (stopping) {
        terminate?.()
        return
      }
      stopping = true
      for (const cron of crons) cron.stop()
      if (running.size) log.info(`draining: waiting for ${[...running.keys()].join(', ')} to finish`)
      const kill = () => {
        for (const [job, child] of running) {
          log.warn(`stopping ${job} with SIGTERM`, { pid: child.pid })
          child.kill('SIGTERM')
        }
      }
      terminate = kill
      const timer = setTimeout(kill, stopOptions.drainMs ?? 300_000)
      await new Promise<void>((resolve) => {
        const check = () => {
          if (running.size === 0) {
            finished.delete(check)
            resolve()
          }
        }
        finished.add(check)
        check()
      })
      clearTimeout(timer)
      log.info('scheduler stopped')
    },
  }
}

function forwardLines(stream: NodeJS.ReadableStream, write: (line: string) => void) {
  let buffer = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    buffer += chunk
    const lines = buffer.split('\n')
    buffer = lines.pop() ?? ''
    for (const line of lines) write(line)
  })
  stream.on('end', () => {
    if (buffer) write(buffer)
  })
}
