import { renderChartSvg } from '../charts/svg.ts'
import { describeLateness } from '../schedules/lateness.ts'
import { formatMs } from '../text/duration.ts'
import { escapeHtml } from '../text/escape.ts'
import { relativeTime } from '../text/relative.ts'
import { type DailyRuns, type OpenIncident, percent, type StatusReport, type StatusRun, utcMinute } from './status.ts'

const colors: Record<string, string> = {
  succeeded: '#2da44e',
  failed: '#cf222e',
  timed_out: '#bc4c00',
  cancelled: '#8250df',
  skipped: '#afb8c1',
  running: '#0969da',
}

const e = escapeHtml

function runTitle(run: StatusRun): string {
  const parts = [`#${run.id} ${run.status}`, utcMinute(run.startedAt)]
  if (run.durationMs !== null) parts.push(formatMs(run.durationMs))
  if (run.error) parts.push(run.error)
  return parts.join(' · ')
}

/** The run-outcome strip: one square per run, oldest left, coloured by outcome, with a tooltip. */
export function outcomeStrip(runs: readonly StatusRun[]): string {
  const size = 7
  const gap = 2
  const width = Math.max(1, runs.length * (size + gap))
  const cells = runs
    .map(
      (r, i) =>
        `<rect class="run ${e(r.status)}" data-status="${e(r.status)}" x="${i * (size + gap)}" y="0" width="${size}" height="${size}" rx="2" fill="${colors[r.status] ?? '#57606a'}"><title>${e(runTitle(r))}</title></rect>`,
    )
    .join('')
  return `<svg class="strip" role="img" aria-label="${runs.length} recent runs" width="${width}" height="${size}" viewBox="0 0 ${width} ${size}">${cells}</svg>`
}

/** The duration chart: one bar per finished run, height by duration (scaled to the slowest), coloured by outcome. */
export function durationChart(runs: readonly StatusRun[]): string {
  const height = 40
  const bar = 4
  const gap = 1
  const finished = runs.filter((r) => r.durationMs !== null && r.status !== 'skipped')
  const width = Math.max(1, finished.length * (bar + gap))
  const max = Math.max(1, ...finished.map((r) => r.durationMs!))
  const bars = finished
    .map((r, i) => {
      const h = Math.max(1, Math.round((r.durationMs! / max) * (height - 2)))
      return `<rect class="bar" data-ms="${r.durationMs}" x="${i * (bar + gap)}" y="${height - h}" width="${bar}" height="${h}" fill="${colors[r.status] ?? '#57606a'}"><title>${e(runTitle(r))}</title></rect>`
    })
    .join('')
  const label = finished.length ? `slowest ${formatMs(max)}` : 'no finished runs'
  return `<svg class="durations" role="img" aria-label="durations, ${e(label)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${bars}</svg><div class="axis">${e(label)}</div>`
}

const style = `
:root { color-scheme: light dark; --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #fff; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #8d96a0; --line: #30363d; --bg: #0d1117; } }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); margin: 24px; }
h1 { font-size: 20px; margin: 0 0 4px; }
header p { color: var(--muted); margin: 0 0 16px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { font-size: 12px; text-transform: uppercase; color: var(--muted); }
td.job code { font-weight: 600; }
td.job small { display: block; color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; }
.crit { font-size: 11px; color: #cf222e; border: 1px solid #cf222e; border-radius: 8px; padding: 0 5px; margin-left: 4px; }
.paused { color: #9a6700; font-size: 12px; display: block; }
.rel { color: var(--muted); font-size: 12px; display: block; }
.axis { color: var(--muted); font-size: 11px; }
.num { font-variant-numeric: tabular-nums; }
h2 { font-size: 16px; margin: 24px 0 8px; }
.incidents { list-style: none; padding: 0; margin: 0; display: grid; gap: 8px; }
.incident { border: 1px solid var(--line); border-left: 6px solid var(--muted); border-radius: 6px; padding: 8px 12px; }
.incident.critical { border-left-color: #cf222e; }
.incident.warning { border-left-color: #bc4c00; }
.incident.info { border-left-color: #9a6700; }
.incident .kind { font-size: 11px; text-transform: uppercase; color: var(--muted); margin-right: 6px; }
.incident .title { font-weight: 600; }
.incident .detail { color: var(--muted); font-size: 13px; display: block; white-space: pre-wrap; overflow-wrap: anywhere; }
.calm { color: #2da44e; font-weight: 600; }
.runs-chart svg { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
.table-wrap { overflow-x: auto; }
.exempt { color: var(--muted); font-size: 12px; display: block; }
time, .badge { white-space: nowrap; }
td.last .badge { display: block; width: fit-content; margin-bottom: 2px; }
.incident .since { color: var(--muted); font-size: 12px; margin-left: 6px; white-space: nowrap; }
.incident .since time { display: none; }
.incident .since .rel { display: inline; font-size: 12px; }
@media (max-width: 700px) {
  body { margin: 12px; }
  th.wide, td.lateness, td.rate, td.median, td.chart { display: none; }
}
`

// Keeps every "3 h ago" current in the reader's clock, with the very function the server wrote them with; the static
// text stays readable without it.
const script = `
(() => {
  const relativeTime = ${relativeTime.toString()};
  const now = new Date();
  let n = 0;
  for (const el of document.querySelectorAll('time[data-rel]')) {
    const rel = el.parentElement.querySelector('.rel');
    if (rel) rel.textContent = relativeTime(new Date(el.getAttribute('datetime')), now);
    n++;
  }
  document.body.dataset.rendered = String(n);
})();
`

const kindWords: Record<OpenIncident['kind'], string> = {
  security: 'security',
  alert: 'alert',
  failing: 'failing',
  late: 'late',
  paused: 'paused',
}

function incidentItem(i: OpenIncident, time: (at: Date) => string): string {
  return `<li class="incident ${e(i.severity)}" data-kind="${e(i.kind)}" data-key="${e(i.key)}">
<span class="kind">${e(kindWords[i.kind])} · ${e(i.severity)}</span><span class="title">${e(i.title)}</span>${
    i.since ? ` <span class="since" title="${e(utcMinute(i.since))}">since ${time(i.since)}</span>` : ''
  }${i.detail ? `<span class="detail">${e(i.detail)}</span>` : ''}</li>`
}

/** The runs chart: real runs per day by outcome (renderChartSvg, inline). */
export function dailyChart(daily: readonly DailyRuns[]): string {
  if (daily.length === 0) return ''
  return renderChartSvg({
    title: `Runs per day, last ${daily.length} days (UTC)`,
    labels: daily.map((d) => d.day.slice(5)),
    series: [
      { name: 'succeeded', values: daily.map((d) => d.succeeded), color: '#2da44e' },
      { name: 'failed, timed out or cancelled', values: daily.map((d) => d.failed), color: '#cf222e' },
      { name: 'skipped', values: daily.map((d) => d.skipped), color: '#8c959f' },
    ],
    width: 720,
    height: 240,
  })
}

/** How the page is delivered: a file (the watchdog's artifact) or live from `status --serve`, refreshing itself. */
export interface StatusPageOptions {
  /** Seconds between reloads of a served page; none for a file. */
  refreshSeconds?: number
}

/** Renders the self-contained status page (inline CSS, SVG and script; no external assets): incidents first, then jobs. */
export function renderStatusHtml(report: StatusReport, options: StatusPageOptions = {}): string {
  const { jobs, openIncidents: incidents, generatedAt: now } = report
  const failing = jobs.filter((j) => j.lastRun && ['failed', 'timed_out'].includes(j.lastRun.status)).length
  const paused = jobs.filter((j) => j.paused).length
  const time = (at: Date) =>
    `<time data-rel datetime="${at.toISOString()}">${e(utcMinute(at))}</time> <span class="rel">${e(relativeTime(at, now))}</span>`
  const rows = jobs
    .map((j) => {
      const last = j.lastRun
      return `<tr data-job="${e(j.job)}" data-last-status="${e(last?.status ?? 'never')}"${j.paused ? ' data-paused="true"' : ''}>
<td class="job"><code>${e(j.job)}</code>${j.critical ? '<span class="crit">critical</span>' : ''}<small>${e(j.schedule)}</small>${
        j.paused
          ? `<span class="paused">paused${j.paused.target === 'all' ? ' (all jobs)' : ''} until ${e(utcMinute(j.paused.until))}: ${e(j.paused.reason)}</span>`
          : ''
      }${j.exemptFromPauseAll !== undefined && !j.paused ? `<span class="exempt">exempt from pause all: ${e(j.exemptFromPauseAll)}</span>` : ''}</td>
<td class="last">${
        last
          ? `<span class="badge" style="background:${colors[last.status] ?? '#57606a'}">${e(last.status.replace('_', ' '))}</span> ${time(last.startedAt)}`
          : 'never run'
      }</td>
<td class="next">${j.nextRun ? time(j.nextRun) : '-'}</td>
<td class="lateness">${e(describeLateness(j.lateness, formatMs))}</td>
<td class="rate num" title="${j.finishedRuns} finished runs in 30 days">${e(percent(j.successRate))}</td>
<td class="median num">${j.medianMs === undefined ? '-' : e(formatMs(j.medianMs))}</td>
<td class="outcomes">${outcomeStrip(j.recent)}</td>
<td class="chart">${durationChart(j.recent)}</td>
</tr>`
    })
    .join('\n')
  const attention = incidents.length
    ? `<ul class="incidents">\n${incidents.map((i) => incidentItem(i, time)).join('\n')}\n</ul>`
    : '<p class="calm">Nothing needs attention: no open incident, no late or failing job, no pause.</p>'
  const refresh = options.refreshSeconds
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${refresh ? `<meta http-equiv="refresh" content="${refresh}">\n` : ''}<title>${incidents.length ? `(${incidents.length}) ` : ''}admin-jobs status</title>
<style>${style}</style>
</head>
<body>
<header>
<h1>admin-jobs status</h1>
<p>Generated ${e(utcMinute(now))}${refresh ? ` · live, reloads every ${refresh} s` : ''} · <span id="summary">${incidents.length} open, ${jobs.length} jobs, ${failing} failing, ${paused} paused</span></p>
</header>
<section id="attention">
<h2>Needs attention (${incidents.length})</h2>
${attention}
</section>
<section id="jobs">
<h2>Jobs</h2>
<div class="table-wrap">
<table class="jobs">
<thead><tr><th>Job</th><th>Last result</th><th>Next run</th><th class="wide">Lateness (14 days)</th><th class="wide">Success (30 days)</th><th class="wide">Median</th><th>Recent runs</th><th class="wide">Durations</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
</div>
</section>
<section id="runs" class="runs-chart">
<h2>Runs</h2>
${dailyChart(report.daily)}
</section>
<script>${script}</script>
</body>
</html>
`
}
