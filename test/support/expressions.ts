import fs from 'node:fs'
import { data, Evaluator, Lexer, Parser } from '@actions/expressions'

// A step's `if:` judged with GitHub's own expression language (@actions/expressions, the parser and evaluator of
// GitHub's Actions language services), for the conditions the emulation's small evaluator refuses on purpose.

type JobStatus = 'success' | 'failure' | 'cancelled'

const statusFunctions = /\b(success|always|failure|cancelled)\s*\(/

function truthy(d: data.ExpressionData): boolean {
  switch (d.kind) {
    case data.Kind.Null:
      return false
    case data.Kind.Boolean:
      return (d as data.BooleanData).value
    case data.Kind.Number: {
      const n = (d as data.NumberData).value
      return n !== 0 && !Number.isNaN(n)
    }
    case data.Kind.String:
      return (d as data.StringData).value.length > 0
    default:
      return true
  }
}

/**
 * Whether a step with condition `condition` runs, given the contexts (`steps`, `env`, `inputs`…) and the job's status
 * so far: as the runner does, a condition without a status function means `success() && (condition)`, and no
 * condition means `success()`. A condition that fails to evaluate throws, as it fails the step on GitHub.
 */
export function stepRuns(
  condition: string | undefined,
  contexts: Record<string, unknown>,
  status: JobStatus = 'success',
) {
  const bare = (condition ?? '')
    .trim()
    .replace(/^\$\{\{([\s\S]*)\}\}$/, '$1')
    .trim()
  const expression = !bare ? 'success()' : statusFunctions.test(bare) ? bare : `success() && (${bare})`
  const lexed = new Lexer(expression).lex()
  const parsed = new Parser(lexed.tokens, Object.keys(contexts), [
    { name: 'success', minArgs: 0, maxArgs: 0 },
    { name: 'always', minArgs: 0, maxArgs: 0 },
    { name: 'failure', minArgs: 0, maxArgs: 0 },
    { name: 'cancelled', minArgs: 0, maxArgs: 0 },
  ]).parse()
  const fn = (name: string, value: () => boolean) => ({
    name,
    minArgs: 0,
    maxArgs: 0,
    call: () => new data.BooleanData(value()),
  })
  const functions = new Map(
    [
      fn('success', () => status === 'success'),
      fn('always', () => true),
      fn('failure', () => status === 'failure'),
      fn('cancelled', () => status === 'cancelled'),
    ].map((f) => [f.name, f]),
  )
  const context = JSON.parse(JSON.stringify(contexts), data.reviver) as data.Dictionary
  return truthy(new Evaluator(parsed, context, functions).evaluate())
}

/** The outputs a step wrote to its GITHUB_OUTPUT file (`name=value` and `name<<delimiter` blocks). */
export function readStepOutputs(file: string): Record<string, string> {
  const lines = fs.readFileSync(file, 'utf8').split('\n')
  const outputs: Record<string, string> = {}
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const block = /^([^=<]+)<<(.+)$/.exec(line)
    if (block) {
      const end = lines.indexOf(block[2]!, i + 1)
      outputs[block[1]!] = lines.slice(i + 1, end).join('\n')
      i = end
    } else if (line.includes('=')) outputs[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1)
  }
  return outputs
}
