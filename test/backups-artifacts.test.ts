import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { generateX25519Identity, identityToRecipient } from 'age-encryption'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clientEnv, conninfoDatabase, countTables, findExecutable, libpqTarget } from '#backups'
import {
  decryptFile,
  EncryptionSettingError,
  encryptArtifactFiles,
  parseRecipients,
  readIdentities,
} from '../.github/actions/encrypt-artifact/encrypt.ts'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { jobEnv, root, runJobScript } from './support/run.ts'

// Dumps and audit archives leave a GitHub runner as artifacts, which anyone who can read the repository may download:
// they are encrypted to an age public key first (.github/actions/encrypt-artifact), and restored as docs/backups.md
// says: decrypt, check the checksum, pg_restore into a fresh database.

const action = path.join(root, '.github/actions/encrypt-artifact/encrypt.ts')
let source: TestDatabase
let scratch: TestDatabase
let work: string
let identity: string
let recipient: string

beforeAll(async () => {
  source = await createTestDatabase('artifact_src')
  scratch = await createTestDatabase('artifact_verify', { migrate: false })
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'aj-artifacts-'))
  identity = await generateX25519Identity()
  recipient = await identityToRecipient(identity)
  await source.sql`
    insert into users (id, email, role) select g, 'person' || g || '@customer.example', 'user' from generate_series(1, 1500) g`
  await source.sql`
    insert into audit_logs (action, metadata) select 'auth.login', jsonb_build_object('n', g) from generate_series(1, 2500) g`
})
afterAll(() => fs.rmSync(work, { recursive: true, force: true }))

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex')

describe('artifact keys', () => {
  it('reads public keys separated by commas, spaces or lines, with comments, and no key from an empty value', async () => {
    const second = await identityToRecipient(await generateX25519Identity())
    expect(parseRecipients(undefined)).toEqual([])
    expect(parseRecipients('  ')).toEqual([])
    expect(parseRecipients(`${recipient}, ${second}`)).toEqual([recipient, second])
    expect(parseRecipients(`# ops laptop\n${recipient}\n\n# vault\n${second} # rotated 2026-11\n`)).toEqual([
      recipient,
      second,
    ])
  })

  it('refuses a malformed key and a secret key pasted by mistake, without repeating either', () => {
    expect(() => parseRecipients(`${recipient},age1notakey`)).toThrow(EncryptionSettingError)
    expect(() => parseRecipients(`${recipient},age1notakey`)).toThrow(
      /^ARTIFACT_AGE_RECIPIENTS entry 2 is not an age public key/,
    )
    let message = ''
    try {
      parseRecipients(identity)
    } catch (err) {
      message = (err as Error).message
    }
    expect(message).toMatch(/entry 1 is a secret key: give the public key/)
    expect(message).not.toContain(identity.slice(16))
  })
})

describe('an encrypted backup artifact', () => {
  it('is restored end to end: dump verified in plaintext, encrypted, decrypted, checked, restored with equal row counts', async () => {
    const backupDir = path.join(work, 'backups')
    // The job verifies the plaintext dump (checksum, pg_restore --list, a full restore) before anything encrypts it,
    // and records the row counts of the dump's snapshot. Uncompressed, so the plaintext shows the rows it holds.
    const run = await runJobScript('scripts/backups/database.ts', {
      env: {
        DATABASE_URL: source.url,
        BACKUP_DIR: backupDir,
        BACKUP_VERIFY_DATABASE_URL: scratch.url,
        BACKUP_COMPRESSION: '0',
      },
    })
    expect(run.code, run.output).toBe(0)
    const [backup] = await source.sql<{ file: string; sha256: string; table_counts: Record<string, number> }[]>`
      select file, sha256, table_counts from jobs.backups where status = 'verified' order by id desc limit 1`
    const dump = path.join(backupDir, backup!.file)
    expect(sha256(dump)).toBe(backup!.sha256)

    // What the workflow uploads: the dump and its checksum file, each as ciphertext.
    const artifact = path.join(work, 'artifact')
    const written = await encryptArtifactFiles({
      paths: [dump, `${dump}.sha256`],
      output: artifact,
      recipients: [recipient],
    })
    expect(written.map((w) => w.name)).toEqual([`${backup!.file}.age`, `${backup!.file}.sha256.age`])
    expect(fs.readdirSync(artifact).sort()).toEqual([`${backup!.file}.age`, `${backup!.file}.sha256.age`])
    const ciphertext = fs.readFileSync(path.join(artifact, `${backup!.file}.age`))
    expect(ciphertext.subarray(0, 21).toString()).toBe('age-encryption.org/v1')
    expect(ciphertext.includes('PGDMP')).toBe(false)
    expect(ciphertext.includes('@customer.example')).toBe(false)
    expect(fs.readFileSync(dump).includes('@customer.example')).toBe(true)

    // The operator's side, as docs/backups.md tells it: decrypt both files with the key file, then sha256sum -c.
    const keyFile = path.join(work, 'backup-key.txt')
    fs.writeFileSync(keyFile, `# public key: ${recipient}\n${identity}\n`, { mode: 0o600 })
    const restoreDir = path.join(work, 'restore')
    const identities = readIdentities(fs.readFileSync(keyFile, 'utf8'))
    for (const name of fs.readdirSync(artifact))
      await decryptFile(path.join(artifact, name), path.join(restoreDir, name.replace(/\.age$/, '')), identities)
    const restored = path.join(restoreDir, backup!.file)
    expect(spawnSync('sha256sum', ['-c', `${backup!.file}.sha256`], { cwd: restoreDir, encoding: 'utf8' }).stdout).toBe(
      `${backup!.file}: OK\n`,
    )
    expect(sha256(restored)).toBe(backup!.sha256)

    // pg_restore into a fresh, empty database; every table's rows as the dump's snapshot had them.
    const fresh = await createTestDatabase('artifact_restore', { migrate: false })
    const target = libpqTarget(fresh.url)
    execFileSync(
      findExecutable('pg_restore', process.env.PATH)!,
      [
        '--no-owner',
        '--no-privileges',
        '--exit-on-error',
        '--no-password',
        '--jobs=2',
        `--dbname=${conninfoDatabase(target.database)}`,
        restored,
      ],
      { env: clientEnv(jobEnv(), target), stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const counts = await countTables(fresh.sql)
    expect(counts).toEqual(backup!.table_counts)
    expect(counts['public.users']).toBe(1500)
    expect(counts['public.audit_logs']).toBe(2500)
  })

  it('cannot be read with another key, and a changed byte makes decryption fail instead of yielding a wrong dump', async () => {
    const [name] = fs.readdirSync(path.join(work, 'artifact')).filter((n) => n.endsWith('.dump.age'))
    const file = path.join(work, 'artifact', name!)
    const other = await generateX25519Identity()
    await expect(decryptFile(file, path.join(work, 'wrong-key.dump'), [other])).rejects.toThrow()
    const flipped = Buffer.from(fs.readFileSync(file))
    flipped[Math.floor(flipped.length * 0.6)]! ^= 0x01
    const tampered = path.join(work, 'tampered.dump.age')
    fs.writeFileSync(tampered, flipped)
    await expect(decryptFile(tampered, path.join(work, 'tampered.dump'), [identity])).rejects.toThrow()
    // Neither leaves a file behind that could be mistaken for a dump.
    expect(fs.readdirSync(work).filter((n) => /^(wrong-key|tampered)\.dump(?!\.age$)/.test(n))).toEqual([])
  })
})

describe('the encrypt-artifact action', () => {
  const runAction = (command: string, env: Record<string, string>) => {
    const output = path.join(work, `github-output-${command}-${Object.keys(env).length}`)
    fs.writeFileSync(output, '')
    const result = spawnSync(process.execPath, ['--import', 'tsx', action, command], {
      cwd: root,
      env: jobEnv({ GITHUB_ACTIONS: 'true', GITHUB_OUTPUT: output, ...env }),
      encoding: 'utf8',
    })
    return { code: result.status, output: result.stdout + result.stderr, outputs: fs.readFileSync(output, 'utf8') }
  }

  it('encrypts a directory (the audit archive) keeping its names, and says encrypted=true', () => {
    const archive = path.join(work, 'archive')
    fs.mkdirSync(path.join(archive, '2026'), { recursive: true })
    fs.writeFileSync(path.join(archive, 'SHA256SUMS'), 'x\n')
    fs.writeFileSync(path.join(archive, '2026', 'audit-logs-2026-10.ndjson.gz'), 'rows')
    const out = path.join(work, 'archive-artifact')
    const result = runAction('encrypt', {
      ARTIFACT_AGE_RECIPIENTS: recipient,
      ENCRYPT_PATH: `${archive}\n`,
      ENCRYPT_OUTPUT: out,
    })
    expect(result.code, result.output).toBe(0)
    expect(result.outputs).toMatch(/^encrypted<<.*\ntrue\n/m)
    expect(fs.readdirSync(out, { recursive: true }).sort()).toEqual([
      '2026',
      '2026/audit-logs-2026-10.ndjson.gz.age',
      'SHA256SUMS.age',
    ])
  })

  it('uploads nothing without a key (encrypted=false and a warning) and fails with exit 2 on a malformed key', () => {
    const out = path.join(work, 'no-key-artifact')
    const none = runAction('encrypt', { ENCRYPT_PATH: path.join(work, 'archive'), ENCRYPT_OUTPUT: out })
    expect(none.code, none.output).toBe(0)
    expect(none.outputs).toMatch(/^encrypted<<.*\nfalse\n/m)
    expect(none.output).toMatch(/::warning title=Artifact not uploaded::ARTIFACT_AGE_RECIPIENTS is not set/)
    expect(fs.existsSync(out)).toBe(false)
    const bad = runAction('check', { ARTIFACT_AGE_RECIPIENTS: 'age1notakey' })
    expect(bad.code, bad.output).toBe(2)
    expect(bad.output).toContain('::error::ARTIFACT_AGE_RECIPIENTS entry 1 is not an age public key')
  })
})
