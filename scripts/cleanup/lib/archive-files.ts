import { createReadStream, createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip, createGzip } from 'node:zlib'
import {
  AbortedError,
  atomicFile,
  createHashingStream,
  isAtomicTemp,
  type Logger,
  NonRetryableError,
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

/**
 * Files are gzip level 1 (as `gzip -1`: on audit lines 17% more bytes than level 6 for a third of its CPU time)
 * with no name and mtime 0 in the header, so the same rows always give the same bytes.
 */
const gzipLevel = 1

/** `audit-logs-YYYY-MM.ndjson.gz`. */
export function monthFileName(month: string): string {
  if (!/^\d{4}-\d{2}$/.test(month)) throw new TypeError(`not a month: ${month}`)
  return `audit-logs-${month}.ndjson.gz`
}

/** Where a month file's rows come from, besides jobs.audit_logs_archive. */
export interface MonthSources {
  /** Detached partitions (schema-qualified) whose rows of this month join the file. */
  partitions?: readonly string[]
  /**
   * The month's current file holds rows that exist nowhere else (rows of dropped partitions): it is merged in, after
   * its sha256 is checked against one of these (the recorded one, or one a killed run was about to record).
   */
  previous?: readonly string[]
  /** Called with the new file's sha256 once it is written and fsynced, before it replaces the old one. */
  beforeReplace?: (sha256: string) => Promise<void>
}

/**
 * Writes one month's file from jobs.audit_logs_archive (plus `sources`): rows of that UTC month in (occurred_at, id)
 * order, one JSON object a line with a fixed key order and UTC microsecond timestamps, streamed through a cursor and
 * gzip (memory stays flat in the row count), into a temp file that is fsynced and then renamed over the final name.
 * A row found both in the previous file and in a source is written once.
 */
export async function writeMonthFile(
  sql: Sql,
  options: { archiveDir: string; month: string; signal?: AbortSignal } & MonthSources,
): Promise<MonthFile> {
  const file = monthFileName(options.month)
  const target = path.join(options.archiveDir, file)
  const previous = options.previous ? await openPrevious(target, options.previous) : undefined
  const out = atomicFile(target)
  try {
    let rows = 0
    const start = sql`(${options.month} || '-01')::timestamp at time zone 'UTC'`
    const end = sql`((${options.month} || '-01')::timestamp + interval '1 month') at time zone 'UTC'`
    const from = [sql`jobs.audit_logs_archive`, ...(options.partitions ?? []).map((p) => sql(p))]
      .map(
        (relation) =>
          sql`select ${lineColumn(sql)}, occurred_at, id from ${relation} where occurred_at >= ${start} and occurred_at < ${end}`,
      )
      .reduce((a, b) => sql`${a} union all ${b}`)
    // A cursor, not COPY … TO STDOUT: postgres.js 3.4 can leave its socket paused after a COPY stream under
    // backpressure. Batches of 5,000 lines keep memory flat in the row count.
    async function* lines() {
      // The keys' aliases differ from the columns: ORDER BY must sort by the bigint id, not its text.
      const cursor = sql<{ line: string; at: string; id: string }[]>`
        select line, to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at, id::text as "id"
        from (${from}) rows order by rows.occurred_at, rows.id`.cursor(5000)
      let kept = previous ? await previous.next() : null
      for await (const batch of cursor) {
        let text = ''
        for (const row of batch) {
          while (kept && compareKeys(kept, row) < 0) {
            text += `${kept.line}\n`
            rows++
            kept = await previous!.next()
          }
          if (kept && compareKeys(kept, row) === 0) kept = await previous!.next()
          text += `${row.line}\n`
          rows++
        }
        yield Buffer.from(text)
      }
      while (kept) {
        yield Buffer.from(`${kept.line}\n`)
        rows++
        kept = await previous!.next()
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
    await options.beforeReplace?.(digest.sha256())
    await out.commit()
    return { file, month: options.month, rows, bytes: digest.bytes, sha256: digest.sha256() }
  } catch (err) {
    await out.abort()
    throw options.signal?.aborted ? (options.signal.reason ?? new AbortedError('aborted', { cause: err })) : err
  } finally {
    previous?.close()
  }
}

/** One line's JSON object, as month files hold it. */
const lineColumn = (sql: Sql) => sql`json_build_object(
          'id', id,
          'occurred_at', to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
          'actor_id', actor_id, 'action', action, 'target_type', target_type, 'target_id', target_id,
          'ip', ip::text, 'user_agent', user_agent, 'metadata', metadata)::text as line`

interface KeyedLine {
  line: string
  at: string
  id: string
}

/** (occurred_at, id) order; `at` is fixed-width UTC text, `id` a decimal integer. */
function compareKeys(a: { at: string; id: string }, b: { at: string; id: string }): number {
  if (a.at !== b.at) return a.at < b.at ? -1 : 1
  if (a.id.length !== b.id.length) return a.id.length - b.id.length
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

const lineKey = /^\{"id" : (\d+), "occurred_at" : "([^"]+)"/

/** Opens a month file whose rows exist only there, after checking it against `sums`; yields its lines in order. */
async function openPrevious(file: string, sums: readonly string[]) {
  const name = path.basename(file)
  const actual = await sha256File(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err
    throw new NonRetryableError(
      `${name} holds archived rows of dropped partitions and is not in ARCHIVE_DIR: put it back (sha256 ${sums[0]}) so ` +
        'new rows of its month can be merged into it; nothing was changed',
    )
  })
  if (!sums.includes(actual))
    throw new NonRetryableError(
      `${name} does not match its recorded sha256 (${sums[0]}); it holds archived rows of dropped partitions, so ` +
        'it is not rewritten: restore the recorded file',
    )
  const input = createReadStream(file).pipe(createGunzip())
  const reader = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })[Symbol.asyncIterator]()
  return {
    async next(): Promise<KeyedLine | null> {
      for (;;) {
        const { value, done } = await reader.next()
        if (done) return null
        if (!value) continue
        const key = lineKey.exec(value)
        if (!key)
          throw new NonRetryableError(`${name}: a line that is not an archived audit row: ${value.slice(0, 80)}`)
        return { line: value, id: key[1]!, at: key[2]! }
      }
    },
    close: () => input.destroy(),
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
