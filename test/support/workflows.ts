import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { data, Evaluator, Lexer, Parser } from '@actions/expressions'
import { truthy } from '@actions/expressions/result'
import { workflowJobs } from '@admin-jobs/sdk/platform'
import { parse } from 'yaml'
import { root } from './run.ts'

/** One workflow file as the tests see it: its text, its parsed document and, for a job workflow, the job it runs. */
export interface WorkflowFile {
  file: string
  path: string
  text: string
  doc: Record<string, any>
  /** `<area>/<job>` when the workflow's `run:` steps run exactly one job script, `scripts/<area>/<job>.ts`. */
  job: string | undefined
  /** Every job its `run:` steps run: one for a job workflow, several for the shared runner, none for ci/retry. */
  jobs: string[]
}

/** A step of a workflow job. */
export interface Step {
  id?: string
  name?: string
  uses?: string
  run?: string
  if?: string
  env?: Record<string, string>
  with?: Record<string, unknown>
  shell?: string
}

/** Every `.github/workflows/*.yml` present now (other engineers add theirs during the day), sorted by file name. */
export function loadWorkflows(): WorkflowFile[] {
  const dir = path.join(root, '.github', 'workflows')
  return fs
    .readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((file) => {
      const text = fs.readFileSync(path.join(dir, file), 'utf8')
      const doc = parse(text) as Record<string, any>
      const jobs = workflowJobs(doc)
      return {
        file,
        path: path.join('.github', 'workflows', file),
        text,
        doc,
        job: jobs.length === 1 ? jobs[0] : undefined,
        jobs,
      }
    })
}

/** Every composite action under `.github/actions`, as `{ path, text, doc }`. */
export function loadActions(): { path: string; text: string; doc: Record<string, any> }[] {
  const dir = path.join(root, '.github', 'actions')
  if (!fs.existsSync(dir)) return []
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => /(^|\/)action\.ya?ml$/.test(f))
    .map((f) => {
      const text = fs.readFileSync(path.join(dir, f), 'utf8')
      return { path: path.join('.github', 'actions', f), text, doc: parse(text) as Record<string, any> }
    })
}

/** Every step of every job of a workflow document (or of a composite action's `runs`). */
export function allSteps(doc: Record<string, any>): Step[] {
  if (doc?.runs?.steps) return doc.runs.steps
  return Object.values<any>(doc?.jobs ?? {}).flatMap((job) => (Array.isArray(job?.steps) ? job.steps : []))
}

/** A job workflow's `on.schedule` entries. */
export function scheduleOf(doc: Record<string, any>): { cron: string; timezone?: string }[] {
  const schedule = doc?.on?.schedule
  return Array.isArray(schedule) ? schedule : []
}

/** The contexts an expression reads (`secrets`, `vars`, `inputs`, `github`, `steps`, …), as plain JSON values. */
export type ExpressionContext = Record<string, unknown>

/** How the job stands when a step's `if:` is read: what `success()`, `failure()` and `cancelled()` answer. */
export type JobStatus = 'success' | 'failure' | 'cancelled'

const statusFunctions = ['always', 'success', 'failure', 'cancelled'] as const

/** Evaluates one expression (without `${{ }}`) with GitHub's own expression engine (@actions/expressions). */
function evaluateExpression(expression: string, context: ExpressionContext, status: JobStatus): data.ExpressionData {
  const lexed = new Lexer(expression).lex()
  const functions = statusFunctions.map((name) => ({ name, minArgs: 0, maxArgs: 0 }))
  const parsed = new Parser(lexed.tokens, Object.keys(context), functions).parse()
  const answers: Record<(typeof statusFunctions)[number], boolean> = {
    always: true,
    success: status === 'success',
    failure: status === 'failure',
    cancelled: status === 'cancelled',
  }
  const implementations = new Map(
    functions.map((f) => [f.name, { ...f, call: () => new data.BooleanData(answers[f.name]) }]),
  )
  const contexts = JSON.parse(JSON.stringify(context), data.reviver) as data.Dictionary
  return new Evaluator(parsed, contexts, implementations).evaluate()
}

/**
 * Evaluates a value with `${{ }}` the way the runner does for `env:`, `with:` and `runs-on` (each expression
 * replaced by its result as a string), with GitHub's expression engine; a syntax error or unknown function throws.
 */
export function evaluate(value: string, context: ExpressionContext): string {
  return value.replace(/\$\{\{\s*(.+?)\s*\}\}/g, (_, expression: string) =>
    evaluateExpression(expression, context, 'success').coerceString(),
  )
}

/**
 * Whether a job or step with `if: condition` runs: `${{ }}` optional, and a condition without a status function
 * means `success() && (condition)`, as on GitHub. No condition: runs while the job succeeds.
 */
export function condition(value: string | undefined, context: ExpressionContext, status: JobStatus): boolean {
  if (value === undefined) return status === 'success'
  const inner = /^\s*\$\{\{([\s\S]*)\}\}\s*$/.exec(value)?.[1] ?? value
  const expression = /\b(always|success|failure|cancelled)\s*\(/.test(inner) ? inner : `success() && (${inner})`
  return truthy(evaluateExpression(expression, context, status))
}

/** The local calendar fields of `date` in `timeZone`. */
export function localParts(date: Date, timeZone = 'UTC'): { day: number; weekday: number; hour: number } {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    day: 'numeric',
    weekday: 'short',
    hour: 'numeric',
    hourCycle: 'h23',
  }).formatToParts(date)
  const get = (type: string) => parts.find((p) => p.type === type)!.value
  const weekday = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(get('weekday'))
  return { day: Number(get('day')), weekday, hour: Number(get('hour')) }
}

/** The result of one emulated `run:` step. */
export interface StepResult {
  code: number | null
  output: string
}

/** Runs a step's `run:` script the way a GitHub-hosted runner does (`bash --noprofile --norc -eo pipefail`), from the repository root. */
export function runStep(script: string, env: Record<string, string>, timeoutMs = 60_000): Promise<StepResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', script], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })
}

/** Temp files a runner gives each step: GITHUB_STEP_SUMMARY, GITHUB_OUTPUT, GITHUB_ENV, RUNNER_TEMP. */
export function actionsFiles(): { dir: string; summary: string; output: string; env: Record<string, string> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aj-actions-'))
  const summary = path.join(dir, 'step_summary.md')
  const output = path.join(dir, 'output')
  for (const f of [summary, output, path.join(dir, 'env')]) fs.writeFileSync(f, '')
  return {
    dir,
    summary,
    output,
    env: {
      GITHUB_STEP_SUMMARY: summary,
      GITHUB_OUTPUT: output,
      GITHUB_ENV: path.join(dir, 'env'),
      RUNNER_TEMP: dir,
    },
  }
}

/** What one emulated job did: each step's outcome (by id or name), the outputs of steps with an id, the job's status. */
export interface JobRun {
  status: JobStatus
  output: string
  /** Everything the steps wrote to their GITHUB_OUTPUT files, in order. */
  outputs: string
  outcomes: { step: string; outcome: 'success' | 'failure' | 'skipped' }[]
  steps: Record<string, { outcome: string; conclusion: string; outputs: Record<string, string> }>
}

/** Reads a GITHUB_OUTPUT file: `name=value` lines and `name<<DELIMITER` blocks. */
export function readOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const block = /^([^=<]+)<<(.+)$/.exec(lines[i]!)
    if (block) {
      const value: string[] = []
      while (++i < lines.length && lines[i] !== block[2]) value.push(lines[i]!)
      out[block[1]!] = value.join('\n')
    } else if (lines[i]!.includes('=')) {
      const at = lines[i]!.indexOf('=')
      out[lines[i]!.slice(0, at)] = lines[i]!.slice(at + 1)
    }
  }
  return out
}

/**
 * Runs the `run:` steps of a workflow job as the runner does: each step's `if:` read with GitHub's rules against the
 * job's status and the `steps` context so far (outcomes, and outputs from each step's own GITHUB_OUTPUT file), its
 * `env:` evaluated with `context`, a failing step failing the job. `uses:` steps and `pnpm install` are left out (the
 * checkout already has node_modules); `stepEnv` adds the runner's variables (GITHUB_*, RUNNER_TEMP, …) to each step.
 */
export async function runJobSteps(
  job: { env?: Record<string, unknown>; steps?: Step[] },
  options: {
    context: ExpressionContext
    workflowEnv?: Record<string, unknown>
    stepEnv: (step: Step) => Record<string, string>
    timeoutMs?: number
  },
): Promise<JobRun> {
  const run: JobRun = { status: 'success', output: '', outputs: '', outcomes: [], steps: {} }
  for (const step of job.steps ?? []) {
    if (typeof step.run !== 'string' || /\bpnpm install\b/.test(step.run)) continue
    const context = { ...options.context, steps: run.steps }
    const label = step.id ?? step.name ?? step.run.split('\n')[0]!
    if (!condition(step.if, context, run.status)) {
      run.outcomes.push({ step: label, outcome: 'skipped' })
      if (step.id) run.steps[step.id] = { outcome: 'skipped', conclusion: 'skipped', outputs: {} }
      continue
    }
    const mapped = (env: Record<string, unknown> | undefined) =>
      Object.fromEntries(Object.entries(env ?? {}).map(([k, v]) => [k, evaluate(String(v), context)]))
    const files = actionsFiles()
    const extra = options.stepEnv(step)
    const env = { ...mapped(options.workflowEnv), ...mapped(job.env), ...mapped(step.env), ...extra, ...files.env }
    // The summary is the job's, shared by its steps; GITHUB_OUTPUT is each step's own.
    if (extra.GITHUB_STEP_SUMMARY) env.GITHUB_STEP_SUMMARY = extra.GITHUB_STEP_SUMMARY
    const result = await runStep(step.run, env, options.timeoutMs ?? 90_000)
    run.output += result.output
    const outcome = result.code === 0 ? 'success' : 'failure'
    run.outcomes.push({ step: label, outcome })
    const written = fs.readFileSync(files.output, 'utf8')
    run.outputs += written
    if (step.id) run.steps[step.id] = { outcome, conclusion: outcome, outputs: readOutputs(written) }
    if (outcome === 'failure') run.status = 'failure'
  }
  return run
}
