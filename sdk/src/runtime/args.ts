import { parseArgs } from 'node:util'
import { ConfigError } from './errors.ts'

/** A flag's kind: `boolean` (`--force`) or `string` (`--limit 5`, `--limit=5`). */
export type FlagType = 'boolean' | 'string'

/** A declared flag: its kind, or its kind with what `--help` says of it (`value` names its argument, default `value`). */
export type FlagSpec = FlagType | { type: FlagType; description?: string; value?: string }

/** Declared flags by name, without the leading `--`. */
export type FlagSpecs = Readonly<Record<string, FlagSpec>>

/** Parsed flag values: true/false for a boolean flag, the text for a string flag, undefined when absent. */
export type Flags = Record<string, string | boolean | undefined>

/** What parseCommandLine found: the flags, and the positional arguments in order. */
export interface CommandLine {
  flags: Flags
  positional: string[]
}

/** The kind of a declared flag. */
export function flagType(spec: FlagSpec): FlagType {
  return typeof spec === 'string' ? spec : spec.type
}

/** True when argv asks for help: `--help` or `-h` anywhere before a `--` terminator. */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--')
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h')
}

const booleanValue = /^--([^=]+)=(true|false)$/

/**
 * Parses argv with node:util parseArgs in strict mode against `specs` (positional arguments only when `positionals`
 * is true, default false). A boolean flag also takes `=true` or `=false` (`--json=false` is false, as if absent), so a
 * workflow can pass an input straight through. An unknown flag, a missing value, a value on a boolean flag, a value
 * that looks like another flag (`--limit --json`; write `--limit=-1` to mean it) or an unexpected argument is a
 * ConfigError (exit 2) naming the flag and the known flags.
 */
export function parseCommandLine(
  argv: readonly string[],
  specs: FlagSpecs,
  options: { positionals?: boolean } = {},
): CommandLine {
  const explicit: Flags = {}
  const args: string[] = []
  // parseArgs has no `=false` for booleans (Node 20): take `--flag=true|false` of a declared boolean out first.
  for (const [i, arg] of argv.entries()) {
    const match = booleanValue.exec(arg)
    const spec = match ? specs[match[1]!] : undefined
    if (match && spec && flagType(spec) === 'boolean' && !argv.slice(0, i).includes('--')) {
      explicit[match[1]!] = match[2] === 'true'
    } else args.push(arg)
  }
  const config = {
    args,
    options: Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, { type: flagType(spec) }])),
    strict: true,
    allowPositionals: options.positionals === true,
  } as const
  let parsed: ReturnType<typeof parseArgs>
  try {
    parsed = parseArgs(config)
  } catch (err) {
    throw usageError(err, args, specs, options.positionals === true)
  }
  const flags: Flags = {}
  for (const [name, value] of Object.entries(parsed.values)) flags[name] = value as string | boolean
  for (const [name, value] of Object.entries(explicit)) if (!(name in flags)) flags[name] = value
  return { flags, positional: parsed.positionals }
}

/** Renders the known flags for an error message: `--dry-run, --limit <N>`. */
function knownFlags(specs: FlagSpecs): string {
  const names = Object.entries(specs).map(([name, spec]) =>
    flagType(spec) === 'string' ? `--${name} <${(typeof spec === 'object' && spec.value) || 'value'}>` : `--${name}`,
  )
  return names.length ? `flags: ${names.join(', ')}` : 'it takes no flags'
}

/**
 * Turns parseArgs' error into a ConfigError that names the offending argument. Strict parsing decides; a lenient
 * pass over the same arguments finds which token it refused, so nothing depends on the wording of Node's message.
 */
function usageError(err: unknown, args: string[], specs: FlagSpecs, positionals: boolean): ConfigError {
  const code = (err as { code?: string }).code
  if (!code?.startsWith('ERR_PARSE_ARGS_')) return new ConfigError('cannot read the command line', { cause: err })
  const known = knownFlags(specs)
  const { tokens } = parseArgs({
    args,
    options: Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, { type: flagType(spec) }])),
    strict: false,
    allowPositionals: true,
    tokens: true,
  })
  for (const token of tokens) {
    if (token.kind === 'positional' && !positionals)
      return new ConfigError(`unexpected argument "${token.value}" (${known})`, { cause: err })
    if (token.kind !== 'option') continue
    const spec = specs[token.name]
    const flag = token.rawName
    if (!spec || token.rawName.length === 2) {
      return new ConfigError(`unknown flag ${flag} (${known})`, { variable: flag, cause: err })
    }
    if (flagType(spec) === 'boolean' && token.value !== undefined) {
      return new ConfigError(`${flag} takes no value (write ${flag} or ${flag}=false; ${known})`, {
        variable: flag,
        cause: err,
      })
    }
    if (flagType(spec) === 'string' && token.value === undefined) {
      return new ConfigError(`${flag} needs a value (${known})`, { variable: flag, cause: err })
    }
    if (flagType(spec) === 'string' && !token.inlineValue && token.value?.startsWith('-')) {
      return new ConfigError(
        `${flag} needs a value, not the flag "${token.value}" (to pass a value starting with "-", write ${flag}=${token.value}; ${known})`,
        { variable: flag, cause: err },
      )
    }
  }
  return new ConfigError(`cannot read the command line (${known})`, { cause: err })
}
