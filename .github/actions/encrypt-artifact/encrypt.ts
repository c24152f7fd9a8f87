// Encrypts files before they become a workflow artifact, so that anyone who can read the repository (and so download
// its artifacts) gets ciphertext only. The format is age (age-encryption.org/v1): the `age` command line tool, rage
// and any other age implementation decrypt it, and so does `decrypt` below. Commands (docs/backups.md):
//   encrypt   the action: the files of ENCRYPT_PATH into ENCRYPT_OUTPUT, to the keys in ARTIFACT_AGE_RECIPIENTS
//   check     whether ARTIFACT_AGE_RECIPIENTS holds usable public keys
//   decrypt   --identity <key file> [--output <dir>] <file.age>…
//   keygen    --output <key file>: a new key pair (prints the public key)
import { createReadStream, createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream } from 'node:stream/web'
import { parseArgs } from 'node:util'
import * as core from '@actions/core'
import { atomicFile } from '@admin-jobs/sdk'
import { isMainModule } from '@admin-jobs/sdk/platform'
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption'

/** The variable (set from a secret) holding the public keys artifacts are encrypted to. */
export const recipientsVariable = 'ARTIFACT_AGE_RECIPIENTS'

/** A setting that is wrong: the command exits 2 with this message. */
export class EncryptionSettingError extends Error {}

/**
 * The age public keys (`age1…`, X25519 or post-quantum hybrid) in a variable's value: separated by commas, spaces or
 * lines, `#` comments allowed (the format of an age recipients file). Empty or unset: no keys. A malformed key, or a
 * secret key pasted by mistake, is an EncryptionSettingError that never repeats the value.
 */
export function parseRecipients(value: string | undefined, variable = recipientsVariable): string[] {
  const keys = (value ?? '')
    .split('\n')
    .map((line) => line.replace(/#.*/, ''))
    .join(' ')
    .split(/[\s,]+/)
    .filter(Boolean)
  keys.forEach((key, i) => {
    if (/^AGE-SECRET-KEY-/i.test(key))
      throw new EncryptionSettingError(
        `${variable} entry ${i + 1} is a secret key: give the public key (age1…) and keep the secret one offline (replace this key pair: it has been exposed to the workflow)`,
      )
    try {
      new Encrypter().addRecipient(key)
    } catch (err) {
      throw new EncryptionSettingError(`${variable} entry ${i + 1} is not an age public key (age1…)`, { cause: err })
    }
  })
  return keys
}

/** The identities (`AGE-SECRET-KEY-…` lines) of an age key file, as `age-keygen` or `keygen` below write it. */
export function readIdentities(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^AGE-SECRET-KEY-/.test(l))
}

/** Streams `transform(source)` into `target` (an atomic write: a target that exists is complete); returns its size. */
async function writeThrough(
  source: string,
  target: string,
  transform: (input: ReadableStream<Uint8Array>) => Promise<ReadableStream<Uint8Array>>,
): Promise<number> {
  await fs.mkdir(path.dirname(target), { recursive: true })
  const out = atomicFile(target)
  try {
    const input = Readable.toWeb(createReadStream(source)) as ReadableStream<Uint8Array>
    await pipeline(Readable.fromWeb(await transform(input)), createWriteStream(out.temp, { mode: 0o600 }))
    await out.commit()
    return (await fs.stat(target)).size
  } catch (err) {
    await out.abort()
    throw err
  }
}

/** Encrypts `source` to `recipients` into `target` (streamed: memory does not grow with the file); returns its size. */
export async function encryptFile(source: string, target: string, recipients: readonly string[]): Promise<number> {
  if (recipients.length === 0) throw new Error('encryptFile needs at least one recipient')
  const encrypter = new Encrypter()
  for (const r of recipients) encrypter.addRecipient(r)
  // The library's stream types are the DOM's; Node's web streams are the same objects.
  return writeThrough(source, target, (input) => encrypter.encrypt(input as never) as never)
}

/** Decrypts an age file with any of `identities` into `target`; a wrong key or a changed byte fails (age authenticates). */
export async function decryptFile(source: string, target: string, identities: readonly string[]): Promise<number> {
  const decrypter = new Decrypter()
  for (const identity of identities) decrypter.addIdentity(identity)
  return writeThrough(source, target, (input) => decrypter.decrypt(input as never) as never)
}

/** The regular files under `paths` (a directory stands for every file under it), with the name each gets in the artifact. */
async function collect(paths: readonly string[]): Promise<{ file: string; name: string }[]> {
  const found: { file: string; name: string }[] = []
  for (const p of paths) {
    const stat = await fs.stat(p).catch(() => undefined)
    if (stat?.isFile()) found.push({ file: p, name: path.basename(p) })
    else if (stat?.isDirectory()) {
      const entries = await fs.readdir(p, { recursive: true, withFileTypes: true })
      for (const e of entries) {
        if (!e.isFile()) continue
        const file = path.join(e.parentPath, e.name)
        found.push({ file, name: path.relative(p, file) })
      }
    }
  }
  return found.sort((a, b) => (a.name < b.name ? -1 : 1))
}

/** Encrypts every file under `paths` into `output` as `<name>.age`; returns what it wrote. */
export async function encryptArtifactFiles(options: {
  paths: readonly string[]
  output: string
  recipients: readonly string[]
}): Promise<{ name: string; bytes: number }[]> {
  const written: { name: string; bytes: number }[] = []
  for (const { file, name } of await collect(options.paths)) {
    const bytes = await encryptFile(file, path.join(options.output, `${name}.age`), options.recipients)
    written.push({ name: `${name}.age`, bytes })
  }
  return written
}

/** Where messages go: annotations and step outputs on Actions, plain lines elsewhere (an operator's terminal). */
interface Reporter {
  info(message: string): void
  warning(message: string, title?: string): void
  error(message: string): void
  output(name: string, value: string): void
}

function reporterFor(env: NodeJS.ProcessEnv): Reporter {
  if (env.GITHUB_ACTIONS === 'true')
    return {
      info: (m) => core.info(m),
      warning: (m, title) => core.warning(m, { title }),
      error: (m) => core.error(m),
      output: (name, value) => core.setOutput(name, value),
    }
  return {
    info: (m) => process.stdout.write(`${m}\n`),
    warning: (m) => process.stderr.write(`warning: ${m}\n`),
    error: (m) => process.stderr.write(`error: ${m}\n`),
    output: () => {},
  }
}

/** The action: encrypts, sets the `encrypted` output ('true' only when there is something to upload). */
async function encryptCommand(env: NodeJS.ProcessEnv, say: Reporter): Promise<void> {
  const recipients = parseRecipients(env[recipientsVariable])
  const paths = (env.ENCRYPT_PATH ?? '')
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean)
  const output = env.ENCRYPT_OUTPUT?.trim()
  if (!output || paths.length === 0) throw new EncryptionSettingError('the action needs its path and output inputs')
  if (recipients.length === 0) {
    say.warning(
      `${recipientsVariable} is not set: nothing is uploaded (an artifact can be downloaded by anyone who can read the repository). On a GitHub-hosted runner the files are gone when the job ends.`,
      'Artifact not uploaded',
    )
    say.output('encrypted', 'false')
    return
  }
  const started = performance.now()
  const written = await encryptArtifactFiles({ paths, output, recipients })
  for (const w of written) say.info(`encrypted ${w.name} (${w.bytes} bytes)`)
  say.info(
    `${written.length} file(s) encrypted to ${recipients.length} key(s) in ${Math.round(performance.now() - started)} ms`,
  )
  say.output('encrypted', written.length > 0 ? 'true' : 'false')
}

async function main(argv: string[], env: NodeJS.ProcessEnv, say: Reporter): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { identity: { type: 'string' }, output: { type: 'string' } },
  })
  const [command, ...files] = positionals
  if (command === 'encrypt') return encryptCommand(env, say)
  if (command === 'check') {
    const n = parseRecipients(env[recipientsVariable]).length
    if (n) say.info(`artifacts are encrypted to ${n} key(s)`)
    else
      say.warning(
        `${recipientsVariable} is not set: dumps and archives are not uploaded as artifacts`,
        'No artifact key',
      )
    return
  }
  if (command === 'keygen') {
    if (!values.output) throw new EncryptionSettingError('keygen needs --output <key file>')
    const identity = await generateX25519Identity()
    const recipient = await identityToRecipient(identity)
    const text = `# created: ${new Date().toISOString()}\n# public key: ${recipient}\n${identity}\n`
    await fs.writeFile(values.output, text, { mode: 0o600, flag: 'wx' })
    process.stdout.write(`${recipient}\n`)
    return
  }
  if (command === 'decrypt') {
    if (!values.identity || files.length === 0)
      throw new EncryptionSettingError('decrypt needs --identity <key file> and one or more .age files')
    const identities = readIdentities(await fs.readFile(values.identity, 'utf8'))
    if (identities.length === 0) throw new EncryptionSettingError(`${values.identity} holds no AGE-SECRET-KEY- line`)
    for (const file of files) {
      const name = path.basename(file).replace(/\.age$/, '')
      const target = path.join(values.output ?? path.dirname(file), name)
      if (await fs.stat(target).catch(() => undefined)) throw new EncryptionSettingError(`${target} exists already`)
      const bytes = await decryptFile(file, target, identities)
      process.stdout.write(`${target} (${bytes} bytes)\n`)
    }
    return
  }
  throw new EncryptionSettingError(`unknown command "${command ?? ''}" (encrypt, check, decrypt, keygen)`)
}

if (isMainModule(import.meta.url)) {
  const say = reporterFor(process.env)
  main(process.argv.slice(2), process.env, say).catch((err: Error) => {
    say.error(err.message)
    process.exitCode = err instanceof EncryptionSettingError ? 2 : 1
  })
}
