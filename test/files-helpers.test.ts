import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import {
  atomicFile,
  createHashingStream,
  isAtomicTemp,
  sha256,
  sha256File,
  sha256sumLine,
  withFileLock,
  writeFileAtomic,
} from '@admin-jobs/sdk'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

let dir: string
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'files-helpers-'))
})
afterAll(() => fs.rm(dir, { recursive: true, force: true }))

/** A pid that belonged to a process which has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
  return Number(child.stdout)
}

/** Creates a lock directory as another holder would have left it, optionally aged. */
async function planted(name: string, owner: object | undefined, ageMs = 0): Promise<string> {
  const lock = path.join(dir, name)
  await fs.mkdir(lock)
  if (owner) await fs.writeFile(path.join(lock, 'owner.json'), JSON.stringify({ token: 'theirs', ...owner }))
  const at = new Date(Date.now() - ageMs)
  await fs.utimes(lock, at, at)
  return lock
}

const attempt = (lock: string, options = {}) =>
  withFileLock(lock, async () => 'ran', { timeoutMs: 300, ...options }).catch((err: Error) => err.message)

describe('withFileLock', () => {
  it('runs one holder at a time and removes the lock afterwards', async () => {
    const lock = path.join(dir, 'serial.lock')
    let inside = 0
    let most = 0
    await Promise.all(
      Array.from({ length: 6 }, () =>
        withFileLock(lock, async () => {
          inside++
          most = Math.max(most, inside)
          await new Promise((r) => setTimeout(r, 15))
          inside--
        }),
      ),
    )
    expect(most).toBe(1)
    await expect(fs.stat(lock)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('takes over at once a lock whose holder on this host has died', async () => {
    const lock = await planted('dead.lock', { pid: deadPid(), host: os.hostname() })
    expect(await attempt(lock)).toBe('ran')
  })

  it('never breaks the lock of a live holder, however old, and says what it waited for', async () => {
    const lock = await planted('live.lock', { pid: process.pid, host: os.hostname() }, 3_600_000)
    expect(await attempt(lock)).toBe(`timed out after 300ms waiting for the lock ${lock}`)
    expect(JSON.parse(await fs.readFile(path.join(lock, 'owner.json'), 'utf8')).token).toBe('theirs')
  })

  it('takes over a lock without an owner, or from another host, only once it is older than staleMs', async () => {
    expect(await attempt(await planted('empty-young.lock', undefined, 1_000))).toMatch(/^timed out/)
    expect(await attempt(await planted('empty-old.lock', undefined, 60_000))).toBe('ran')
    const remote = { pid: process.pid, host: 'another-host' }
    expect(await attempt(await planted('remote-young.lock', remote, 1_000))).toMatch(/^timed out/)
    expect(await attempt(await planted('remote-old.lock', remote, 5_000), { staleMs: 2_000 })).toBe('ran')
  })

  it('leaves the lock of a new holder alone when its own was taken over meanwhile', async () => {
    const lock = path.join(dir, 'taken.lock')
    await withFileLock(lock, async () => {
      await fs.writeFile(path.join(lock, 'owner.json'), JSON.stringify({ pid: 1, host: 'x', token: 'new' }))
    })
    expect(JSON.parse(await fs.readFile(path.join(lock, 'owner.json'), 'utf8')).token).toBe('new')
  })
})

describe('writeFileAtomic and atomicFile', () => {
  it('writes a file (creating its directory) and replaces an existing one, leaving no temp file', async () => {
    const file = path.join(dir, 'atomic', 'nested', 'out.json')
    await writeFileAtomic(file, '{"v":1}\n')
    await writeFileAtomic(file, Buffer.from('{"v":2}\n'))
    expect(await fs.readFile(file, 'utf8')).toBe('{"v":2}\n')
    expect(await fs.readdir(path.dirname(file))).toEqual(['out.json'])
  })

  it('removes its temp file and keeps the target as it was when the write fails', async () => {
    const target = path.join(dir, 'atomic', 'a-directory')
    await fs.mkdir(path.join(target, 'child'), { recursive: true })
    await expect(writeFileAtomic(target, 'x')).rejects.toMatchObject({
      code: expect.stringMatching(/EISDIR|ENOTEMPTY|EEXIST/),
    })
    expect((await fs.readdir(path.dirname(target))).filter(isAtomicTemp)).toEqual([])
    expect((await fs.stat(target)).isDirectory()).toBe(true)
  })

  it('streams into a temp file beside the target that appears under the target name only on commit', async () => {
    const target = path.join(dir, 'atomic', 'streamed.txt')
    const out = atomicFile(target)
    expect(path.dirname(out.temp)).toBe(path.dirname(target))
    expect(isAtomicTemp(path.basename(out.temp))).toBe(true)
    await pipeline(Readable.from(['a', 'b', 'c']), createWriteStream(out.temp))
    await expect(fs.stat(target)).rejects.toMatchObject({ code: 'ENOENT' })
    await out.commit()
    expect(await fs.readFile(target, 'utf8')).toBe('abc')
    const named = atomicFile(`${target}.2`, { temp: `${target}.2.partial` })
    await fs.writeFile(named.temp, 'partial')
    await named.abort()
    await expect(fs.stat(named.temp)).rejects.toMatchObject({ code: 'ENOENT' })
    expect(isAtomicTemp('x.json')).toBe(false)
  })
})

describe('sha256 helpers', () => {
  it('hash strings, files and streams alike, and write sha256sum lines', async () => {
    expect(sha256('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    const file = path.join(dir, 'data.bin')
    const data = Buffer.alloc(3 * (1 << 20) + 17, 7)
    await fs.writeFile(file, data)
    const expected = createHash('sha256').update(data).digest('hex')
    expect(await sha256File(file)).toBe(expected)
    const digest = createHashingStream()
    await pipeline(
      Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
      digest.stream,
      createWriteStream(`${file}.copy`),
    )
    expect(digest.sha256()).toBe(expected)
    expect(digest.sha256()).toBe(expected)
    expect(digest.bytes).toBe(data.length)
    expect(sha256sumLine(expected, 'data.bin')).toBe(`${expected}  data.bin\n`)
  })
})
