import fs from 'node:fs/promises'
import path from 'node:path'
import { type Config, type EnvReader, type JobContext, type JobDefinition, writeFileAtomic } from '@admin-jobs/sdk'
import { renderChartPng } from '@admin-jobs/sdk/charts'
import { adminRoutes, loadJobInfos } from '@admin-jobs/sdk/platform'
import { buildDailyReport } from './daily.ts'
import type { ReportDocument } from './document.ts'
import { buildMonthlyReport } from './monthly.ts'
import { reportKey, reportNotice } from './notice.ts'
import { boundsOf, type Period, parsePeriod, type ReportKind, resolvePeriod, validateTimezone } from './period.ts'
import { renderCsv, renderMarkdown } from './render.ts'
import { describeDelivery, reportDelivery, storeReport } from './store.ts'
import { buildWeeklyReport } from './weekly.ts'

/**
 * Settings of the report jobs: REPORT_TIMEZONE (default UTC), the period (`--period`, else REPORT_PERIOD, else the
 * last complete one) and whether to send again (`--force`, else REPORT_FORCE, default false).
 */
export interface ReportSettings {
  timezone: string
  force: boolean
  period: Period
}

/**
 * Reads the report settings for `kind` at `now` (the run's clock), before any connection: an unknown zone, a
 * malformed REPORT_PERIOD (even when `--period` overrides it), a requested period that is malformed or has not ended
 * yet, or a REPORT_FORCE that is not a boolean is a ConfigError (exit 2).
 */
export function readReportSettings(
  kind: ReportKind,
  read: EnvReader,
  flags: Readonly<Record<string, string | boolean | undefined>>,
  now: Date,
): ReportSettings {
  const timezone = validateTimezone(read.string('REPORT_TIMEZONE', 'UTC'))
  const fromEnv = read.string('REPORT_PERIOD')
  const force = flags.force === true || read.boolean('REPORT_FORCE', false)
  if (fromEnv !== undefined) parsePeriod(kind, fromEnv, timezone)
  const requested = typeof flags.period === 'string' ? flags.period : fromEnv
  return { timezone, force, period: resolvePeriod(kind, { now, timezone, requested }) }
}

/** The job definition shared by reports/daily, weekly and monthly (each script adds only its description). */
export function reportJob(kind: ReportKind, description: string, extra: Partial<JobDefinition<ReportSettings>> = {}) {
  return {
    description,
    timeout: '30m',
    flags: {
      force: {
        type: 'boolean',
        description: 'queue the report again, though this period was queued before (also REPORT_FORCE=true)',
      },
      period: {
        type: 'string',
        value: 'period',
        description:
          'a day in the period to report (YYYY-MM-DD; YYYY-MM for monthly; also REPORT_PERIOD); default the last complete one',
      },
    },
    settings: (read: EnvReader, _config: Config, flags, now) => readReportSettings(kind, read, flags, now),
    run: (ctx: JobContext<ReportSettings>) => runReport(ctx, kind),
    ...extra,
  } satisfies JobDefinition<ReportSettings>
}

/**
 * Generates the report of the period in its settings, stores it in jobs.reports keyed by (kind, period) and, in the
 * same transaction, queues its email and Slack post under the key `report:<kind>:<period>`, so a re-run or a retry
 * never queues it twice; `--force` queues a new copy (keyed by this run). The runner delivers it after the job; a
 * run that dies leaves it to the next. Then writes JSON/CSV/markdown/PNG to REPORTS_DIR.
 */
export async function runReport(ctx: JobContext<ReportSettings>, kind: ReportKind) {
  const { sql, log, settings, config, dryRun } = ctx
  const queryStarted = performance.now()
  const bounds = await boundsOf(sql, settings.period)
  log.info('building report', { kind, period: bounds.key, timezone: bounds.timezone })

  const doc =
    kind === 'daily'
      ? await buildDailyReport(sql, bounds)
      : kind === 'weekly'
        ? await buildWeeklyReport(sql, bounds)
        : await buildMonthlyReport(sql, bounds, {
            retentionDays: config.auditLogRetentionDays,
            now: ctx.now(),
            exemptFromPauseAll: new Set(
              (await loadJobInfos()).filter((j) => j.exemptFromPauseAll !== undefined).map((j) => j.id),
            ),
          })
  const queryMs = Math.round(performance.now() - queryStarted)
  const runUrl = ctx.run.url
  const markdown = renderMarkdown(doc, { runUrl })
  ctx.summary.add(markdown)
  const csv = renderCsv(doc)
  const json = `${JSON.stringify(reportJson(doc), null, 2)}\n`
  const stats = {
    kind,
    period: bounds.key,
    ...Object.fromEntries(doc.headline.map((m) => [m.key, m.value])),
    queryMs,
  }

  const channels = adminRoutes(config).map((r) => r.channel)
  if (dryRun) {
    log.info('dry run: would store the report, write its files and send it', {
      period: bounds.key,
      channels: channels.join(',') || 'none',
    })
    return { ...stats, dryRun: true }
  }

  const png = doc.chart ? await renderChartPng(doc.chart) : undefined
  const key = reportKey(bounds)
  const notice = channels.length
    ? {
        kind: 'report',
        key: settings.force ? `${key}:forced:${ctx.run.id}` : key,
        ...reportNotice(doc, { png, csv, runUrl }),
      }
    : undefined
  const stored = await storeReport(sql, ctx.notify, {
    bounds,
    data: reportJson(doc),
    markdown,
    runId: ctx.run.id,
    notice,
  })
  const dir = path.join(config.reportsDir, kind)
  const files = await writeFiles(dir, `${kind}-${bounds.key}`, { json, csv, md: markdown, ...(png ? { png } : {}) })
  log.info('report stored', { generation: stored.generations, files: files.length, dir })
  return {
    ...stats,
    generation: stored.generations,
    ...(await deliveryStats(ctx, notice?.key ?? key, stored.queued, channels)),
  }
}

/** Says what became of the period's report: queued now, or what the outbox knows of the copy queued before. */
async function deliveryStats(
  ctx: JobContext<ReportSettings>,
  key: string,
  queued: { queued: boolean; id?: number } | undefined,
  channels: readonly string[],
) {
  const { log } = ctx
  if (!queued) {
    log.info('no delivery channel configured (SMTP_URL + ALERT_EMAIL_TO, SLACK_WEBHOOK_URL): nothing queued')
    return { queued: false }
  }
  if (queued.id !== undefined) {
    log.info(`report queued for delivery${ctx.settings.force ? ' again (--force)' : ''}`, {
      channels: channels.join(','),
    })
    return { queued: true, channels: channels.join(',') }
  }
  // Queued by an earlier run: only the outbox knows whether each channel took it.
  const delivery = await reportDelivery(ctx.sql, key)
  const states = delivery?.channels.map(describeDelivery) ?? []
  if (delivery?.delivered) {
    log.info('already sent for this period (use --force to send again)', { delivery: states.join('; ') })
  } else {
    const failed = delivery?.channels.some((d) => d.status === 'failed')
    log.info(
      failed
        ? 'queued before for this period and not delivered everywhere; a channel gave up (use --force to queue it again)'
        : 'queued before for this period and not delivered everywhere yet; the outbox keeps trying',
      { delivery: states.join('; ') },
    )
  }
  return { queued: false, alreadyQueued: true, delivery: states.join('; ') }
}

function reportJson(doc: ReportDocument) {
  const { bounds } = doc
  return {
    kind: bounds.kind,
    period: bounds.key,
    title: doc.title,
    label: doc.periodLabel,
    timezone: bounds.timezone,
    start: bounds.start,
    end: bounds.end,
    from: bounds.from.toISOString(),
    to: bounds.to.toISOString(),
    headline: doc.headline,
    ...(doc.findings ? { findings: doc.findings } : {}),
    data: doc.data,
  }
}

async function writeFiles(dir: string, base: string, contents: Record<string, string | Buffer>): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true })
  const written: string[] = []
  for (const [ext, content] of Object.entries(contents)) {
    const file = path.join(dir, `${base}.${ext}`)
    // A reader (or the artifact upload) never sees a half-written file.
    await writeFileAtomic(file, content)
    written.push(file)
  }
  return written
}
