import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { AbortedError, type Logger } from '@admin-jobs/sdk'
import type { Sql } from 'postgres'

/** One month file as listed in the manifest. */
export interface MonthFile {
  file: string
  month: string
  rows: number
  bytes: number
  sha256: string
}

/** The sha256sum-compatible manifest in ARCHIVE_DIR (`sha256sum -c --ignore-missing SHA256SUMS`). */
export const checksumFile = 'SHA256SUMS'
/** The JSON manifest in ARCHIVE_DIR: every month file with its rows, bytes and sha256. */
export const manifestFile = 'audit-logs-manifest.json'

/** Files are gzip level 6 with no name and mtime 0 in the header, so the same rows always give the same bytes. */
const gzipLevel = 6

/** `audit-logs-YYYY-MM.ndjson.gz`. */
export function monthFileName(month: string): string {
  if (!/^\d{4}-\d{2}$/.test(month)) throw new TypeError(`not a month: ${month}`)
  return `audit-logs-${month}.ndjson.gz`
}

/**
 * Writes one month's file from jobs.audit_logs_archive: rows of that UTC month in (occurred_at, id) order, one JSON
 * object a line with a fixed key order and UTC microsecond timestamps, streamed through a cursor and gzip (memory stays
 * flat in the row count), into a temp file that is fsynced and then renamed over the final name.
 */
export async function writeMonthFile(
  sql: Sql,
  options: { archiveDir: string; month: string; signal?: AbortSignal },
): Promise<MonthFile> {
  const file = monthFileName(options.month)
  const target = path.join(options.archiveDir, file)
  const temp = `${target}.tmp-${process.pid}`
  try {
    let rows = 0
    let bytes = 0
    const hash = createHash('sha256')
    // A cursor, not COPY … TO STDOUT: postgres.js 3.4 can leave its socket paused after a COPY stream under
    // backpressure. Batches of 5,000 lines keep memory flat in the row count.
    async function* lines() {
      const cursor = sql<{ line: string }[]>`
        select json_build_object(
          'id', id,
          'occurred_at', to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
          'actor_id', actor_id, 'action', action, 'target_type', target_type, 'target_id', target_id,
          'ip', ip::text, 'user_agent', user_agent, 'metadata', metadata)::text as line
        from jobs.audit_logs_archive
        where occurred_at >= (${options.month} || '-01')::timestamp at time zone 'UTC'
          and occurred_at < ((${options.month} || '-01')::timestamp + interval '1 month') at time zone 'UTC'
        order by occurred_at, id`.cursor(5000)
      for await (const batch of cursor) {
        rows += batch.length
        let text = ''
        for (const row of batch) text += `${row.line}\n`
        yield Buffer.from(text)
      }
    }
    const digest = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk)
        bytes += chunk.length
        done(null, chunk)
      },
    })
    // One batch in flight at a time: gzip sets the pace and nothing piles up in memory.
    await pipeline(
      Readable.from(lines(), { highWaterMark: 1 }),
      createGzip({ level: gzipLevel }),
      digest,
      createWriteStream(temp),
      {
        signal: options.signal,
      },
    )
    await syncFile(temp)
    await fs.rename(temp, target)
    await syncDir(options.archiveDir)
    return { file, month: options.month, rows, bytes, sha256: hash.digest('hex') }
  } catch (err) {
    await fs.rm(temp, { force: true })
    throw options.signal?.aborted ? (options.signal.reason ?? new AbortedError('aborted', { cause: err })) : err
  }
}

async function syncFile(file: string): Promise<void> {
  const handle = await fs.open(file, 'r+')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Writes `name` in `dir` atomically: temp file, fsync, rename. */
async function writeAtomically(dir: string, name: string, text: string): Promise<void> {
  const temp = path.join(dir, `${name}.tmp-${process.pid}`)
  const handle = await fs.open(temp, 'w')
  try {
    await handle.writeFile(text)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await fs.rename(temp, path.join(dir, name))
  await syncDir(dir)
}

/** Renders both manifests from the month list (sorted by month; no timestamps, so equal inputs give equal bytes). */
export function renderManifests(files: readonly MonthFile[]): { checksums: string; manifest: string } {
  const sorted = [...files].sort((a, b) => a.month.localeCompare(b.month))
  const checksums = sorted.map((f) => `${f.sha256}  ${f.file}\n`).join('')
  const manifest = `${JSON.stringify(
    {
      format: 'admin-jobs audit-logs archive v1',
      files: sorted.map((f) => ({ file: f.file, month: f.month, rows: f.rows, bytes: f.bytes, sha256: f.sha256 })),
    },
    null,
    2,
  )}\n`
  return { checksums, manifest }
}

/** Writes SHA256SUMS and audit-logs-manifest.json for every built month (last step of a run: temp + rename). */
export async function writeManifests(archiveDir: string, files: readonly MonthFile[]): Promise<void> {
  const { checksums, manifest } = renderManifests(files)
  await writeAtomically(archiveDir, checksumFile, checksums)
  await writeAtomically(archiveDir, manifestFile, manifest)
}

/** Removes temp files a killed run left in ARCHIVE_DIR. */
export async function removeStaleTempFiles(archiveDir: string, log?: Logger): Promise<void> {
  for (const name of await fs.readdir(archiveDir)) {
    if (/^(audit-logs-|SHA256SUMS).*\.tmp-\d+$/.test(name)) {
      log?.info('removing a temp file a killed run left behind', { file: name })
      await fs.rm(path.join(archiveDir, name), { force: true })
    }
  }
}

/** The sha256 of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  const handle = await fs.open(file, 'r')
  try {
    for await (const chunk of handle.createReadStream()) hash.update(chunk as Buffer)
  } finally {
    await handle.close().catch(() => {})
  }
  return hash.digest('hex')
}

/** Checks every file of SHA256SUMS present in `archiveDir`; returns the problems (empty when all verify). */
export async function verifyArchiveDir(archiveDir: string): Promise<{ checked: number; problems: string[] }> {
  const text = await fs.readFile(path.join(archiveDir, checksumFile), 'utf8')
  const problems: string[] = []
  let checked = 0
  for (const line of text.split('\n').filter(Boolean)) {
    const match = /^([0-9a-f]{64}) {2}(\S+)$/.exec(line)
    if (!match) {
      problems.push(`malformed line: ${line}`)
      continue
    }
    const file = path.join(archiveDir, match[2]!)
    const present = await fs.stat(file).then(
      () => true,
      () => false,
    )
    if (!present) continue
    checked++
    if ((await sha256File(file)) !== match[1]) problems.push(`${match[2]}: checksum mismatch`)
  }
  return { checked, problems }
}
