import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { findExecutable } from '#backups'

// Stand-ins for pg_dump and pg_restore, and the waits the kill tests of backups/database need.

/** The real PostgreSQL client program `tool` on PATH. */
export const real = (tool: string) => findExecutable(tool, process.env.PATH)!

/**
 * A directory with a stand-in pg_dump (and pg_restore, when `restore` is given) that answers `--version` as the real
 * one does and otherwise runs its body (sh); a tool without a body is the real one, linked. The stand-ins see only
 * what the job gives them, so everything they need is written into them. Removed by the caller.
 */
export function fakePgDump(name: string, body: string, restore?: string): string {
  const bin = path.join(os.tmpdir(), `aj-${name}-${process.pid}`)
  fs.mkdirSync(bin, { recursive: true })
  for (const [tool, text] of [
    ['pg_dump', body],
    ['pg_restore', restore],
  ] as const) {
    if (text === undefined) {
      fs.symlinkSync(real(tool), path.join(bin, tool))
      continue
    }
    const version = execFileSync(real(tool), ['--version'], { encoding: 'utf8' }).trim()
    fs.writeFileSync(
      path.join(bin, tool),
      `#!/bin/sh\nif [ "$1" = --version ]; then echo "${version}"; exit 0; fi\n${text}`,
      { mode: 0o755 },
    )
  }
  return bin
}

/** A stand-in pg_dump body: the real pg_dump, whose whole output reaches the job, then a stall until `<work>/go` exists
 * (writing its pid to `<work>/pid` first), so that the job is caught mid-dump with the dump's bytes on disk. */
export function stallingPgDump(work: string): string {
  return `${real('pg_dump')} "$@"\necho $$ > ${work}/pid\nwhile [ ! -e ${work}/go ]; do sleep 0.05; done\n`
}

/** True while process `pid` exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Resolves once `file` exists; rejects after `timeoutMs`. */
export async function waitForFile(file: string, timeoutMs = 20_000): Promise<void> {
  for (const started = Date.now(); !fs.existsSync(file); ) {
    if (Date.now() - started > timeoutMs) throw new Error(`${file} did not appear within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}
