import fs from 'node:fs'
import path from 'node:path'
import { parse } from 'yaml'
import { repoRoot, workflowJobs } from '../schedules/schedules.ts'

/** The secrets and variables one workflow reads (`secrets.X`, `vars.X` in its expressions), sorted. */
export interface WorkflowSettings {
  workflowFile: string
  workflowName: string | undefined
  /** The jobs its steps run (none for ci.yml and retry.yml). */
  jobs: string[]
  secrets: string[]
  vars: string[]
}

const reference = /\b(secrets|vars)\.([A-Za-z_][A-Za-z0-9_]*)/g

/** Every string value of a parsed YAML document (comments are not values, so they name nothing). */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value)) return value.flatMap(strings)
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => [k, ...strings(v)])
  return []
}

/** What a workflow's text reads from `secrets` and `vars`. */
export function settingsOf(workflowYaml: string): { secrets: string[]; vars: string[] } {
  const found = { secrets: new Set<string>(), vars: new Set<string>() }
  for (const text of strings(parse(workflowYaml)))
    for (const [, kind, name] of text.matchAll(reference)) found[kind as 'secrets' | 'vars'].add(name!)
  return { secrets: [...found.secrets].sort(), vars: [...found.vars].sort() }
}

/** The secrets and variables of every workflow in `<root>/.github/workflows`, by file name. */
export function readWorkflowSettings(root = repoRoot()): WorkflowSettings[] {
  const dir = path.join(root, '.github', 'workflows')
  if (!fs.existsSync(dir)) return []
  return fs
    .readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((file) => {
      const text = fs.readFileSync(path.join(dir, file), 'utf8')
      const doc = (parse(text) ?? {}) as Record<string, any>
      return {
        workflowFile: path.join('.github', 'workflows', file),
        workflowName: typeof doc.name === 'string' ? doc.name : undefined,
        jobs: workflowJobs(doc),
        ...settingsOf(text),
      }
    })
}

/**
 * The settings as Markdown: one row per secret or variable with the workflows that read it, then one row per
 * workflow. docs/deploy.md carries this text between its `settings` markers; a test keeps the two equal.
 */
export function renderSettingsTables(settings: readonly WorkflowSettings[]): string {
  const names = new Map<string, { kind: 'secret' | 'variable'; files: string[] }>()
  const add = (kind: 'secret' | 'variable', name: string, file: string) => {
    const key = `${kind}:${name}`
    const entry = names.get(key) ?? { kind, files: [] }
    entry.files.push(path.basename(file))
    names.set(key, entry)
  }
  for (const s of settings) {
    for (const n of s.secrets) add('secret', n, s.workflowFile)
    for (const n of s.vars) add('variable', n, s.workflowFile)
  }
  const same = (files: string[], of: readonly WorkflowSettings[]) =>
    of.length > 0 && files.length === of.length && of.every((s) => files.includes(path.basename(s.workflowFile)))
  const jobWorkflows = settings.filter((s) => s.jobs.length > 0)
  const byName = [...names.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, e]) => {
      const jobFiles = jobWorkflows.map((s) => path.basename(s.workflowFile))
      const others = e.files.filter((f) => !jobFiles.includes(f))
      const files = same(e.files, settings)
        ? 'every workflow'
        : jobFiles.length > 0 && jobFiles.every((f) => e.files.includes(f))
          ? ['every workflow that runs a job', ...others.map((f) => `\`${f}\``)].join(', ')
          : e.files.map((f) => `\`${f}\``).join(', ')
      return `| \`${key.slice(key.indexOf(':') + 1)}\` | ${e.kind} | ${files} |`
    })
  const byWorkflow = settings.map((s) => {
    const list = (xs: string[]) => (xs.length ? xs.map((x) => `\`${x}\``).join(', ') : '—')
    return `| \`${path.basename(s.workflowFile)}\` | ${list(s.secrets)} | ${list(s.vars)} |`
  })
  return [
    '| name | kind | read by |',
    '| --- | --- | --- |',
    ...byName,
    '',
    '| workflow | secrets | variables |',
    '| --- | --- | --- |',
    ...byWorkflow,
  ].join('\n')
}
