import { createReadStream, createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { Readable, Transform } from 'node:stream'
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
 * order, one JSON object a line with a fixed key order and UTC microsecond timestamps (built by the database), through
 * gzip into a temp file that is fsynced and then renamed over the final name; memory stays flat in the row count. The
 * lines stream as one COPY; a month merged with its previous file goes through a cursor instead, where a row found
 * both in that file and in a source is written once.
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
    const relations = ['jobs.audit_logs_archive', ...(options.partitions ?? [])]
    const digest = createHashingStream()
    const write = (source: Readable, decode?: Transform) =>
      pipeline(
        [
          source,
          ...(decode ? [decode] : []),
          createGzip({ level: gzipLevel }),
          digest.stream,
          createWriteStream(out.temp),
        ],
        { signal: options.signal },
      )
    let rows: number
    if (previous) {
      const merged = mergedLines(sql, options.month, relations, previous)
      // One batch in flight at a time: gzip sets the pace and nothing piles up in memory.
      await write(Readable.from(merged.lines, { highWaterMark: 1 }))
      rows = merged.rows()
    } else {
      rows = await copyLines(sql, options.month, relations, write)
    }
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
const lineSql = `json_build_object(
  'id', id,
  'occurred_at', to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
  'actor_id', actor_id, 'action', action, 'target_type', target_type, 'target_id', target_id,
  'ip', ip::text, 'user_agent', user_agent, 'metadata', metadata)::text`

/**
 * The month's rows of `relations` in file order, as SQL text with no parameters (COPY takes none): the month is
 * checked to be YYYY-MM and each relation name is quoted.
 */
function monthRowsSql(month: string, relations: readonly string[], columns: string): string {
  if (!/^\d{4}-\d{2}$/.test(month)) throw new TypeError(`not a month: ${month}`)
  const start = `'${month}-01'::timestamp at time zone 'UTC'`
  const end = `('${month}-01'::timestamp + interval '1 month') at time zone 'UTC'`
  const quoted = (name: string) =>
    name
      .split('.')
      .map((part) => `"${part.replace(/"/g, '""')}"`)
      .join('.')
  const from = relations
    .map(
      (r) =>
        `select id, occurred_at, actor_id, action, target_type, target_id, ip, user_agent, metadata from ${quoted(r)}` +
        ` where occurred_at >= ${start} and occurred_at < ${end}`,
    )
    .join(' union all ')
  return `select ${columns} from (${from}) rows order by rows.occurred_at, rows.id`
}

/**
 * Streams the month's lines out of the database in one COPY into `write`, and returns how many there were. The
 * copy's own escaping is undone on the way (a JSON line holds no raw control character, so the only escape in it is
 * a doubled backslash). In a transaction of its own, without the pool's statement timeout: a month of millions of
 * rows is one long statement; the run's deadline still stops it.
 */
async function copyLines(
  sql: Sql,
  month: string,
  relations: readonly string[],
  write: (source: Readable, decode: Transform) => Promise<void>,
): Promise<number> {
  return sql.begin(async (tx) => {
    await tx`set local statement_timeout = 0`
    const copy = await tx.unsafe(`copy (${monthRowsSql(month, relations, lineSql)}) to stdout`).readable()
    const decoder = createCopyTextDecoder()
    await write(copy, decoder.stream)
    return decoder.lines()
  })
}

/**
 * Undoes COPY's text-format escaping (`\\` → `\`, and `\n`, `\t`, `\r`, `\b`, `\f`, `\v` should they occur) and counts lines.
 * An escape split across two chunks is carried over; `\N` (a NULL line) cannot come from a JSON line and is refused.
 */
export function createCopyTextDecoder(): { stream: Transform; lines(): number } {
  const escapes: Record<number, number> = {
    92: 0x5c,
    110: 0x0a,
    116: 0x09,
    114: 0x0d,
    98: 0x08,
    102: 0x0c,
    118: 0x0b,
  }
  let carry = false
  let lines = 0
  // COPY sends a message a row: decoded rows are gathered into blocks of 64 kB, so gzip is not handed tiny writes.
  const blockBytes = 64 * 1024
  let pending: Buffer[] = []
  let pendingBytes = 0
  const decode = (chunk: Buffer): Buffer => {
    if (!carry && chunk.indexOf(0x5c) === -1) return chunk
    const out = Buffer.allocUnsafe(chunk.length)
    let n = 0
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!
      if (!carry && byte !== 0x5c) {
        out[n++] = byte
        continue
      }
      const next = carry ? byte : chunk[i + 1]
      if (next === undefined) {
        carry = true
        break
      }
      if (!carry) i++
      carry = false
      const decoded = escapes[next]
      if (decoded === undefined) throw new Error(`unexpected escape \\${String.fromCharCode(next)} in a COPY line`)
      out[n++] = decoded
    }
    return out.subarray(0, n)
  }
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) lines++
      try {
        const decoded = decode(chunk)
        pending.push(decoded)
        pendingBytes += decoded.length
      } catch (err) {
        return done(err as Error)
      }
      if (pendingBytes < blockBytes) return done()
      const block = Buffer.concat(pending, pendingBytes)
      pending = []
      pendingBytes = 0
      done(null, block)
    },
    flush(done) {
      if (carry) return done(new Error('a COPY stream ended inside an escape'))
      done(null, pendingBytes > 0 ? Buffer.concat(pending, pendingBytes) : undefined)
    },
  })
  return { stream, lines: () => lines }
}

/**
 * The month's lines from the database merged, in (occurred_at, id) order, with those of its previous file (rows of
 * dropped partitions), through a cursor of 5,000 rows: a line in both is written once. `rows()` counts what was yielded.
 */
function mergedLines(
  sql: Sql,
  month: string,
  relations: readonly string[],
  previous: { next(): Promise<KeyedLine | null> },
) {
  let rows = 0
  async function* lines() {
    // The keys' aliases differ from the columns: ORDER BY must sort by the bigint id, not its text.
    const query = monthRowsSql(
      month,
      relations,
      `${lineSql} as line, to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at, id::text as "id"`,
    )
    const cursor = sql.unsafe<KeyedLine[]>(query).cursor(5000)
    let kept = await previous.next()
    for await (const batch of cursor) {
      let text = ''
      for (const row of batch) {
        while (kept && compareKeys(kept, row) < 0) {
          text += `${kept.line}\n`
          rows++
          kept = await previous.next()
        }
        if (kept && compareKeys(kept, row) === 0) kept = await previous.next()
        text += `${row.line}\n`
        rows++
      }
      yield Buffer.from(text)
    }
    while (kept) {
      yield Buffer.from(`${kept.line}\n`)
      rows++
      kept = await previous.next()
    }
  }
  return { lines: lines(), rows: () => rows }
}

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
