import { createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import {
  AbortedError,
  atomicFile,
  createHashingStream,
  isAtomicTemp,
  type Logger,
  sha256File,
  sha256sumLine,
  writeFileAtomic,
} from '@admin-jobs/sdk'
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
  const out = atomicFile(path.join(options.archiveDir, file))
  try {
    let rows = 0
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
    const digest = createHashingStream()
    // One batch in flight at a time: gzip sets the pace and nothing piles up in memory.
    await pipeline(
      Readable.from(lines(), { highWaterMark: 1 }),
      createGzip({ level: gzipLevel }),
      digest.stream,
      createWriteStream(out.temp),
      { signal: options.signal },
    )
    await out.commit()
    return { file, month: options.month, rows, bytes: digest.bytes, sha256: digest.sha256() }
  } catch (err) {
    await out.abort()
    throw options.signal?.aborted ? (options.signal.reason ?? new AbortedError('aborted', { cause: err })) : err
  }
}

/** Renders both manifests from the month list (sorted by month; no timestamps, so equal inputs give equal bytes). */
export function renderManifests(files: readonly MonthFile[]): { checksums: string; manifest: string } {
  const sorted = [...files].sort((a, b) => a.month.localeCompare(b.month))
  const checksums = sorted.map((f) => sha256sumLine(f.sha256, f.file)).join('')
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
  await writeFileAtomic(path.join(archiveDir, checksumFile), checksums)
  await writeFileAtomic(path.join(archiveDir, manifestFile), manifest)
}

/** Removes temp files a killed run left in ARCHIVE_DIR. */
export async function removeStaleTempFiles(archiveDir: string, log?: Logger): Promise<void> {
  for (const name of await fs.readdir(archiveDir)) {
    if (/^(audit-logs-|SHA256SUMS)/.test(name) && isAtomicTemp(name)) {
      log?.info('removing a temp file a killed run left behind', { file: name })
      await fs.rm(path.join(archiveDir, name), { force: true })
    }
  }
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
