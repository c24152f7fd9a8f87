/**
 * `pnpm bench [case …] [--json]`: runs bench/cases/*.ts in name order (or only the named ones), then prints one table
 * of figures, baselines, ratios and targets. Exits 1 only when a case throws; a missed target is reported, not fatal.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { createLogger, ensureEmbedded, markdownTable } from '@admin-jobs/sdk/platform'
import { type BenchCase, type BenchRow, createHelpers, root } from './harness.ts'

const casesDir = path.join(root, 'bench/cases')

async function discover(): Promise<{ file: string; name: string }[]> {
  const names = (await fs.readdir(casesDir)).filter((n) => /\.[cm]?ts$/.test(n)).sort()
  return names.map((n) => ({ file: path.join(casesDir, n), name: n.replace(/\.[cm]?ts$/, '') }))
}

function format(value: number | undefined, digits = 0): string {
  if (value === undefined || Number.isNaN(value)) return ''
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US')
  return value.toFixed(Math.abs(value) < 10 && digits === 0 ? 1 : digits)
}

/** Renders rows as one aligned text table (and the same columns as markdown when `markdown`). */
export function renderTable(rows: readonly BenchRow[], markdown = false): string {
  const head = ['case', 'layout', 'metric', 'job', 'baseline', 'ratio', 'target', 'met', 'peak RSS MB', 'note']
  const numeric = new Set(['job', 'baseline', 'ratio', 'peak RSS MB'])
  const body = rows.map((r) => [
    r.case ?? '',
    r.layout ?? '',
    r.metric,
    format(r.job),
    format(r.baseline),
    r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}×`,
    r.target ?? '',
    r.met === undefined ? '' : r.met ? 'yes' : 'NO',
    format(r.peakRssMb),
    r.note ?? '',
  ])
  if (markdown) {
    return markdownTable([head, ...body])
  }
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(head[i]!) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(head), line(widths.map((w) => '─'.repeat(w))), ...body.map(line)].join('\n')
}

async function serverUrl(): Promise<{ url: string; release(): Promise<void> }> {
  const url = process.env.BENCH_DATABASE_URL || process.env.TEST_DATABASE_URL
  if (url) return { url, release: async () => {} }
  const handle = await ensureEmbedded({ dataDir: path.join(root, '.data'), log: createLogger({ scope: 'bench' }) })
  return { url: handle.url, release: () => handle.release() }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2)
  const json = argv.includes('--json')
  const markdown = argv.includes('--markdown')
  const wanted = argv.filter((a) => !a.startsWith('--'))
  const all = await discover()
  const unknown = wanted.filter((w) => !all.some((c) => c.name === w))
  if (unknown.length) {
    process.stderr.write(`unknown bench case(s): ${unknown.join(', ')} (have: ${all.map((c) => c.name).join(', ')})\n`)
    return 2
  }
  const selected = wanted.length ? all.filter((c) => wanted.includes(c.name)) : all
  const server = await serverUrl()
  const rows: BenchRow[] = []
  const failures: string[] = []
  try {
    for (const entry of selected) {
      const mod = (await import(pathToFileURL(entry.file).href)) as { default?: BenchCase }
      const benchCase = mod.default
      if (!benchCase || typeof benchCase.run !== 'function') {
        failures.push(`${entry.name}: does not export default defineBenchCase({...})`)
        continue
      }
      const name = benchCase.name ?? entry.name
      const { helpers, cleanup } = createHelpers(server.url, name, rows)
      process.stderr.write(`── ${name}: ${benchCase.description}\n`)
      const started = performance.now()
      try {
        await benchCase.run(helpers)
        process.stderr.write(`   done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`)
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err))
        failures.push(`${name}: ${error.stack ?? error.message}`)
        process.stderr.write(`   FAILED: ${error.message}\n`)
      } finally {
        await cleanup()
      }
    }
  } finally {
    await server.release()
  }
  process.stdout.write(`\n${renderTable(rows, markdown)}\n`)
  if (json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`)
  if (failures.length) {
    process.stderr.write(`\n${failures.length} case(s) failed:\n${failures.join('\n\n')}\n`)
    return 1
  }
  return 0
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exitCode = 1
  },
)
