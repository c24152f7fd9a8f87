import fs from 'node:fs/promises'
import path from 'node:path'
import {
  type Config,
  type EnvReader,
  firstLine,
  type JobContext,
  type JobDefinition,
  toError,
  writeFileAtomic,
} from '@admin-jobs/sdk'
import { renderChartPng } from '@admin-jobs/sdk/charts'
import { buildDailyReport } from './daily.ts'
import { formatChange, type ReportDocument } from './document.ts'
import { buildMonthlyReport } from './monthly.ts'
import { boundsOf, parsePeriod, type ReportKind, resolvePeriod, validateTimezone } from './period.ts'
import { renderCsv, renderHtml, renderMarkdown, renderText } from './render.ts'
import { claimDelivery, releaseDelivery, saveReport } from './store.ts'
import { buildWeeklyReport } from './weekly.ts'

/** Settings of the report jobs: REPORT_TIMEZONE (default UTC), REPORT_FORCE, REPORT_PERIOD (the workflow's inputs). */
export interface ReportSettings {
  timezone: string
  force: boolean
  period: string | undefined
}

/** Reads the report settings for `kind`; a bad zone or period is a ConfigError naming the variable. */
export function readReportSettings(kind: ReportKind, read: EnvReader): ReportSettings {
  const timezone = validateTimezone(read.string('REPORT_TIMEZONE', 'UTC'))
  const period = read.string('REPORT_PERIOD')
  if (period !== undefined) parsePeriod(kind, period, timezone)
  return { timezone, force: read.boolean('REPORT_FORCE', false), period }
}

/** The job definition shared by reports/daily, weekly and monthly (each script adds only its description). */
export function reportJob(kind: ReportKind, description: string, extra: Partial<JobDefinition<ReportSettings>> = {}) {
  return {
    description,
    timeout: '30m',
    flags: {
      force: {
        type: 'boolean',
        description: 'send again to channels that already had this period (also REPORT_FORCE=true)',
      },
      period: {
        type: 'string',
        value: 'period',
        description:
          'a day in the period to report (YYYY-MM-DD; YYYY-MM for monthly; also REPORT_PERIOD); default the last complete one',
      },
    },
    settings: (read: EnvReader, _config: Config) => readReportSettings(kind, read),
    run: (ctx: JobContext<ReportSettings>) => runReport(ctx, kind),
    ...extra,
  } satisfies JobDefinition<ReportSettings>
}

const chartCid = 'chart@admin-jobs'

/**
 * Generates the report of the requested (or last complete) period, stores it in jobs.reports keyed by (kind,
 * period), writes JSON/CSV/markdown/PNG to REPORTS_DIR and sends each configured channel (email, Slack) once per
 * period; `--force` sends again. A channel whose send fails is released, so the next run sends it.
 */
export async function runReport(ctx: JobContext<ReportSettings>, kind: ReportKind) {
  const { sql, log, settings, config, dryRun } = ctx
  const force = ctx.flags.force === true || settings.force
  const requested = typeof ctx.flags.period === 'string' ? ctx.flags.period : settings.period
  const period = resolvePeriod(kind, { now: ctx.now(), timezone: settings.timezone, requested })
  const queryStarted = performance.now()
  const bounds = await boundsOf(sql, period)
  log.info('building report', { kind, period: period.key, timezone: period.timezone })

  const doc =
    kind === 'daily'
      ? await buildDailyReport(sql, bounds)
      : kind === 'weekly'
        ? await buildWeeklyReport(sql, bounds)
        : await buildMonthlyReport(sql, bounds, { retentionDays: config.auditLogRetentionDays, now: ctx.now() })
  const queryMs = Math.round(performance.now() - queryStarted)
  const runUrl = ctx.run.url
  const markdown = renderMarkdown(doc, { runUrl })
  ctx.summary.add(markdown)
  const csv = renderCsv(doc)
  const json = `${JSON.stringify(reportJson(doc), null, 2)}\n`
  const stats = {
    kind,
    period: period.key,
    ...Object.fromEntries(doc.headline.map((m) => [m.key, m.value])),
    queryMs,
  }

  const channels = [
    ...(config.smtpUrl && config.alertEmailTo.length ? ['email'] : []),
    ...(config.slackWebhookUrl ? ['slack'] : []),
  ]
  if (dryRun) {
    log.info('dry run: would store the report, write its files and send it', {
      period: period.key,
      channels: channels.join(',') || 'none',
    })
    return { ...stats, sent: [], dryRun: true }
  }

  const png = doc.chart ? await renderChartPng(doc.chart) : undefined
  const stored = await saveReport(sql, { bounds, data: reportJson(doc), markdown, runId: ctx.run.id })
  const dir = path.join(config.reportsDir, kind)
  const files = await writeFiles(dir, `${kind}-${period.key}`, { json, csv, md: markdown, ...(png ? { png } : {}) })
  log.info('report stored', { generation: stored.generations, files: files.length, dir })

  const key = { kind, period: period.key }
  const sent: string[] = []
  const skipped: string[] = []
  const failures: { channel: string; error: Error }[] = []
  for (const channel of channels) {
    const claim = await claimDelivery(sql, key, channel, force)
    if (!claim.claimed) {
      skipped.push(channel)
      continue
    }
    try {
      if (channel === 'email') {
        await ctx.mail({
          subject: `${doc.title}: ${doc.periodLabel}`,
          text: renderText(doc, { runUrl }),
          html: renderHtml(doc, { chartCid: png ? chartCid : undefined, runUrl }),
          attachments: [
            ...(png
              ? [{ filename: `${kind}-${period.key}.png`, content: png, contentType: 'image/png', cid: chartCid }]
              : []),
            { filename: `${kind}-${period.key}.csv`, content: csv, contentType: 'text/csv; charset=utf-8' },
          ],
        })
      } else {
        await ctx.slack(slackMessage(doc, runUrl))
      }
      sent.push(channel)
    } catch (err) {
      await releaseDelivery(sql, key, channel, claim)
      failures.push({ channel, error: toError(err) })
      log.warn(`could not send the report by ${channel}`, { reason: firstLine(toError(err)) })
    }
  }
  if (skipped.length)
    log.info('already sent for this period (use --force to send again)', { channels: skipped.join(',') })
  if (!channels.length) log.info('no delivery channel configured (SMTP_URL + ALERT_EMAIL_TO, SLACK_WEBHOOK_URL)')
  if (failures.length) {
    throw new Error(`report ${period.key} stored but not sent by ${failures.map((f) => f.channel).join(', ')}`, {
      cause: failures.length === 1 ? failures[0]!.error : new AggregateError(failures.map((f) => f.error)),
    })
  }
  return { ...stats, generation: stored.generations, sent, alreadySent: skipped }
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

/** The Slack message: title, headline numbers (with changes), findings count, run link. */
export function slackMessage(doc: ReportDocument, runUrl: string | undefined) {
  const figure = (m: ReportDocument['headline'][number]) =>
    `${m.value.toLocaleString('en-US')}${m.previous !== undefined ? ` (${formatChange(m.value, m.previous)})` : ''}`
  const title = `${doc.title}: ${doc.periodLabel}`
  const text = [
    title,
    ...doc.headline.map((m) => `${m.label}: ${figure(m)}`),
    ...(runUrl ? [`Run: ${runUrl}`] : []),
  ].join('\n')
  const context = [
    `Period ${doc.bounds.start} to ${doc.bounds.end} (exclusive), ${doc.bounds.timezone}`,
    ...(doc.findings ? [`${doc.findings.length} finding(s) need action`] : []),
    ...(runUrl ? [`<${runUrl}|Run>`] : []),
  ]
  return {
    text,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: title.slice(0, 150) } },
      {
        type: 'section',
        fields: doc.headline.slice(0, 10).map((m) => ({ type: 'mrkdwn', text: `*${m.label}*\n${figure(m)}` })),
      },
      { type: 'context', elements: [{ type: 'mrkdwn', text: context.join(' · ') }] },
    ],
  }
}
