import fs from 'node:fs'
import path from 'node:path'
import { readWorkflowSettings, renderSettingsTables, settingsOf } from '@admin-jobs/sdk/platform'
import { describe, expect, test } from 'vitest'
import { root } from './support/run.ts'

// docs/deploy.md lists every secret and variable each workflow reads, between its settings markers. The list is
// generated from the workflows; this test fails when the two disagree, and prints the block to paste.

const deploy = path.join(root, 'docs', 'deploy.md')
const begin = '<!-- settings:begin -->'
const end = '<!-- settings:end -->'

/** The text between the settings markers of a Markdown document. */
function documentedBlock(markdown: string): string {
  const from = markdown.indexOf(begin)
  const to = markdown.indexOf(end)
  if (from < 0 || to < from) throw new Error(`docs/deploy.md has no ${begin} … ${end} block`)
  return markdown.slice(from + begin.length, to).trim()
}

/** Markdown tables with their cells trimmed and separator rows as `---`: the formatter pads them, nothing else. */
function cells(markdown: string): string {
  return markdown
    .split('\n')
    .map((line) =>
      line.startsWith('|')
        ? line
            .split('|')
            .map((c) => (/^\s*:?-+:?\s*$/.test(c) ? '---' : c.trim()))
            .join('|')
        : line.trim(),
    )
    .join('\n')
}

describe('the secrets and variables of docs/deploy.md', () => {
  test('are exactly what the workflows read', () => {
    const expected = renderSettingsTables(readWorkflowSettings(root))
    const documented = cells(documentedBlock(fs.readFileSync(deploy, 'utf8')))
    expect(
      documented,
      `docs/deploy.md's list is out of date; put this between ${begin} and ${end}:\n\n${expected}\n`,
    ).toBe(cells(expected))
  })

  test('name DATABASE_URL as read by every workflow that runs a job, and the runner variable', () => {
    const documented = cells(documentedBlock(fs.readFileSync(deploy, 'utf8')))
    expect(documented).toMatch(/\|`DATABASE_URL`\|secret\|every workflow that runs a job(, `[\w.-]+`)*\|/)
    expect(documented).toContain('|`ADMIN_JOBS_RUNNER`|variable|')
  })
})

describe('settingsOf', () => {
  test('reads secrets.X and vars.X from expressions anywhere in a workflow, but not from comments', () => {
    const yaml = `# uses secrets.IN_A_COMMENT
name: x
on: workflow_dispatch
jobs:
  a:
    runs-on: \${{ vars.RUNNER || 'ubuntu-latest' }}
    if: vars.ENABLED != 'false'
    steps:
      - run: echo hi
        env:
          A: \${{ secrets.DATABASE_URL }}
          B: \${{ secrets.TOKEN || github.token }}
          C: \${{ vars.B_VAR }}\${{ vars.A_VAR }}
`
    expect(settingsOf(yaml)).toEqual({
      secrets: ['DATABASE_URL', 'TOKEN'],
      vars: ['A_VAR', 'B_VAR', 'ENABLED', 'RUNNER'],
    })
  })

  test('renders a name read by some workflows with their files, and one read by all jobs’ workflows in words', () => {
    const tables = renderSettingsTables([
      { workflowFile: '.github/workflows/a.yml', workflowName: 'a', jobs: ['x/a'], secrets: ['S'], vars: ['V'] },
      { workflowFile: '.github/workflows/b.yml', workflowName: 'b', jobs: ['x/b'], secrets: ['S'], vars: [] },
      { workflowFile: '.github/workflows/ci.yml', workflowName: 'ci', jobs: [], secrets: [], vars: ['V'] },
    ])
    expect(tables).toContain('| `S` | secret | every workflow that runs a job |')
    expect(tables).toContain('| `V` | variable | `a.yml`, `ci.yml` |')
    expect(tables).toContain('| `ci.yml` | — | `V` |')
  })
})
