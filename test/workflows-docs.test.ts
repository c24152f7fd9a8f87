import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, test } from 'vitest'
import { parseDocument, stringify } from 'yaml'
import { root } from './support/run.ts'
import { lintFindings, parserErrors, unpinned } from './support/workflow-checks.ts'

// Every YAML example in the docs is read the way a reader would use it: a whole workflow passes GitHub's parser and
// actionlint, a list of steps does so inside a minimal workflow, and any other YAML at least parses. Copying an
// example must never give an operator a file GitHub refuses.

/** One fenced ```yaml block of a Markdown file. */
interface YamlExample {
  file: string
  line: number
  text: string
}

/** The ```yaml / ```yml blocks of a Markdown text, with the line each starts on. */
function yamlExamples(file: string, markdown: string): YamlExample[] {
  const out: YamlExample[] = []
  const lines = markdown.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*ya?ml\b/.exec(lines[i]!)
    if (!open) continue
    const [, indent, fence] = open as unknown as [string, string, string]
    const body: string[] = []
    let j = i + 1
    while (j < lines.length && !lines[j]!.trimStart().startsWith(fence)) body.push(lines[j++]!.slice(indent.length))
    out.push({ file, line: i + 1, text: `${body.join('\n')}\n` })
    i = j
  }
  return out
}

/** What kind of YAML an example is: a workflow, a list of workflow steps, a composite action, or other YAML. */
function kindOf(value: unknown): 'workflow' | 'steps' | 'action' | 'other' {
  if (Array.isArray(value) && value.every((s) => s && typeof s === 'object' && ('uses' in s || 'run' in s)))
    return 'steps'
  if (value && typeof value === 'object' && 'jobs' in value) return 'workflow'
  if (value && typeof value === 'object' && 'runs' in value) return 'action'
  return 'other'
}

/** Everything wrong with one example: YAML errors, then GitHub parser and actionlint findings, then unpinned actions. */
async function exampleProblems(example: YamlExample): Promise<string[]> {
  const where = `${example.file}:${example.line}`
  const doc = parseDocument(example.text)
  const yamlErrors = [...doc.errors, ...doc.warnings].map((e) => `${where}: ${e.message.split('\n')[0]}`)
  if (yamlErrors.length) return yamlErrors
  const value = doc.toJS()
  const kind = kindOf(value)
  const problems = unpinned(example.text).map((line) => `${where}: not pinned to a commit: ${line}`)
  if (kind === 'workflow' || kind === 'steps') {
    const workflow =
      kind === 'workflow'
        ? example.text
        : stringify({
            name: 'example',
            on: 'workflow_dispatch',
            permissions: { contents: 'read' },
            jobs: { example: { 'runs-on': 'ubuntu-latest', 'timeout-minutes': 5, steps: value } },
          })
    problems.push(...(await parserErrors(where, workflow)).map((e) => `${where}: ${e}`))
    problems.push(...(await lintFindings(where, workflow)))
  }
  return problems
}

function markdownFiles(): string[] {
  const docs = fs
    .readdirSync(path.join(root, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .map((f) => path.join('docs', f))
  return ['README.md', ...docs.sort()]
}

const examples = markdownFiles().flatMap((file) => yamlExamples(file, fs.readFileSync(path.join(root, file), 'utf8')))

describe('the YAML examples of the docs', () => {
  test('are found (the workflow sketch of docs/actions.md among them)', () => {
    expect(
      examples.some(
        (e) => e.file === path.join('docs', 'actions.md') && kindOf(parseDocument(e.text).toJS()) === 'workflow',
      ),
    ).toBe(true)
  })

  test.each(examples.map((e) => [`${e.file}:${e.line}`, e] as const))(
    '%s parses, and as a workflow or steps passes GitHub’s parser and actionlint',
    async (_where, example) => {
      expect(await exampleProblems(example)).toEqual([])
    },
  )
})

describe('the docs example check', () => {
  const md = (yaml: string) => `# t\n\ntext\n\n\`\`\`yaml\n${yaml}\`\`\`\n`

  test('finds each block with its line, also indented under a list item', () => {
    const found = yamlExamples('x.md', `${md('a: 1\n')}\n1. step\n\n   \`\`\`yml\n   b: 2\n   \`\`\`\n`)
    expect(found).toEqual([
      { file: 'x.md', line: 5, text: 'a: 1\n' },
      { file: 'x.md', line: 11, text: 'b: 2\n' },
    ])
  })

  test('refuses an input written as a flow mapping with an unquoted comma (YAML reads a second key)', async () => {
    const [example] = yamlExamples(
      'x.md',
      md(`name: x
on:
  workflow_dispatch:
    inputs:
      dry_run: { description: Build the report, store and send nothing, type: boolean, default: false }
permissions:
  contents: read
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: echo hi
`),
    )
    expect(await exampleProblems(example!)).not.toEqual([])
  })

  test('refuses steps actionlint rejects and actions pinned to a tag', async () => {
    const [example] = yamlExamples(
      'x.md',
      md(`- uses: actions/checkout@v4\n- run: echo "\${{ github.event.issue.title }}"\n`),
    )
    const problems = (await exampleProblems(example!)).join('\n')
    expect(problems).toMatch(/not pinned to a commit/)
    expect(problems).toMatch(/potentially untrusted/)
  })

  test('lets other YAML (a Kubernetes manifest) pass on parsing alone, but not a YAML error', async () => {
    const [manifest] = yamlExamples(
      'x.md',
      md('apiVersion: batch/v1\nkind: CronJob\nspec:\n  schedule: "*/5 * * * *"\n'),
    )
    expect(await exampleProblems(manifest!)).toEqual([])
    const [broken] = yamlExamples('x.md', md('a: [1, 2\n'))
    expect(await exampleProblems(broken!)).not.toEqual([])
  })
})
