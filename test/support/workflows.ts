import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parse } from 'yaml'
import { root } from './run.ts'

/** One workflow file as the tests see it: its text, its parsed document and, for a job workflow, the job it runs. */
export interface WorkflowFile {
  file: string
  path: string
  text: string
  doc: Record<string, any>
  /** `<area>/<job>` when a `run:` step runs `scripts/<area>/<job>.ts`. */
  job: string | undefined
}

/** A step of a workflow job. */
export interface Step {
  name?: string
  uses?: string
  run?: string
  if?: string
  env?: Record<string, string>
  with?: Record<string, unknown>
  shell?: string
}

const scriptPattern = /\bscripts\/([\w-]+\/[\w-]+)\.ts\b/

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
      return { file, path: path.join('.github', 'workflows', file), text, doc, job: jobOf(doc) }
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

function jobOf(doc: Record<string, any>): string | undefined {
  for (const step of allSteps(doc)) {
    const match = typeof step.run === 'string' ? scriptPattern.exec(step.run) : null
    if (match) return match[1]
  }
  return undefined
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

/** What a value of the ${{ }} language evaluates to in the emulation: strings, or undefined for a missing key. */
export type ExpressionContext = Record<string, unknown>

/**
 * Evaluates the subset of GitHub expressions the workflows use in `env:`/`with:` values: context paths
 * (`secrets.X`, `inputs.dry_run`, `github.event.workflow_run.id`), string literals and `||`. Anything else throws,
 * so a workflow cannot silently pass the emulation with an expression it does not understand.
 */
export function evaluate(value: string, context: ExpressionContext): string {
  return value.replace(/\$\{\{\s*(.+?)\s*\}\}/g, (_, expression: string) => {
    for (const operand of expression.split('||').map((s) => s.trim())) {
      const result = operandValue(operand, context)
      if (result !== undefined && result !== '' && result !== false && result !== null) return String(result)
    }
    return ''
  })
}

function operandValue(operand: string, context: ExpressionContext): unknown {
  const literal = /^'((?:[^']|'')*)'$/.exec(operand)
  if (literal) return literal[1]!.replace(/''/g, "'")
  if (operand === 'true' || operand === 'false') return operand === 'true'
  if (/^\d+$/.test(operand)) return Number(operand)
  if (!/^[a-zA-Z_][\w-]*(\.[\w-]+)*$/.test(operand)) throw new Error(`the emulation cannot evaluate "${operand}"`)
  let at: unknown = context
  for (const key of operand.split('.')) {
    if (at === null || typeof at !== 'object') return undefined
    at = (at as Record<string, unknown>)[key]
  }
  return at
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
