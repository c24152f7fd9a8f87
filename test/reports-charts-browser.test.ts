/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// Callbacks of page.evaluate run in the browser page: they see the DOM.
import fs from 'node:fs'
import { chartSize, renderChartPng, renderChartSvg } from '@admin-jobs/sdk/charts'
import { seedDemo } from '@admin-jobs/sdk/platform'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  boundsOf,
  buildDailyReport,
  buildMonthlyReport,
  buildWeeklyReport,
  type ReportDocument,
  type ReportKind,
  renderHtml,
  resolvePeriod,
} from '#reports'
import { hasChromium, launchChromium, screenshotPath } from './support/browser.ts'
import { createTestDatabase } from './support/db.ts'
import { decodePng } from './support/png.ts'

const now = new Date('2026-12-02T08:00:00Z')
const kinds: ReportKind[] = ['daily', 'weekly', 'monthly']
const docs = new Map<ReportKind, { doc: ReportDocument; png: Buffer }>()
let browser: Browser

beforeAll(async () => {
  if (!hasChromium) return
  const db = await createTestDatabase('charts_browser')
  await seedDemo(db.sql, { seed: 1, now, users: 120 })
  for (const kind of kinds) {
    const bounds = await boundsOf(db.sql, resolvePeriod(kind, { now, timezone: 'UTC' }))
    const doc =
      kind === 'daily'
        ? await buildDailyReport(db.sql, bounds)
        : kind === 'weekly'
          ? await buildWeeklyReport(db.sql, bounds)
          : await buildMonthlyReport(db.sql, bounds, { retentionDays: 90, now })
    docs.set(kind, { doc, png: await renderChartPng(doc.chart!) })
  }
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
})

/** A screenshot of the email from its top to just below the chart (the rest is tables, long in a month). */
async function shootTop(page: Page, name: string): Promise<void> {
  const { width, bottom } = await page
    .locator('img')
    .evaluate((i) => ({ width: document.documentElement.clientWidth, bottom: i.getBoundingClientRect().bottom }))
  await page.screenshot({
    path: screenshotPath(name),
    fullPage: true,
    clip: { x: 0, y: 0, width, height: bottom + 24 },
  })
}

/** The report email as a mail client shows it: the inline `cid:` part resolved to the attached PNG. */
async function openEmail(kind: ReportKind, width: number): Promise<Page> {
  const { doc, png } = docs.get(kind)!
  const html = renderHtml(doc, { chartCid: 'chart@admin-jobs' }).replace(
    'cid:chart@admin-jobs',
    `data:image/png;base64,${png.toString('base64')}`,
  )
  const page = await browser.newPage({ viewport: { width, height: 900 }, deviceScaleFactor: 2 })
  await page.setContent(html)
  await page.waitForFunction(() => [...document.images].every((i) => i.complete))
  return page
}

const skipped = hasChromium ? '' : ' (skipped: no /usr/bin/chromium; apt-get install -y chromium)'

describe.skipIf(!hasChromium)(`report charts in headless Chromium${skipped}`, () => {
  it.each(kinds)(
    'shows the %s report email with its chart at 600 × 300, sharp on a 2× screen and drawn',
    async (kind) => {
      // A desktop mail window: the card is 680 px at most, so the chart keeps its full 600 px.
      const page = await openEmail(kind, 760)
      const img = page.locator('img')
      const shown = await img.evaluate((i: HTMLImageElement) => ({
        natural: [i.naturalWidth, i.naturalHeight],
        box: [i.getBoundingClientRect().width, i.getBoundingClientRect().height],
        alt: i.alt,
      }))
      expect(shown.natural).toEqual([1200, 600])
      expect(shown.box).toEqual([600, 300])
      expect(shown.alt).toBe(docs.get(kind)!.doc.chart!.title)
      await shootTop(page, `report-email-${kind}`)
      const chart = decodePng(await img.screenshot({ path: screenshotPath(`report-chart-${kind}`) }))
      expect([chart.width, chart.height]).toEqual([1200, 600])
      // Not blank: a title, grid and bars in the first series' blue, and the failed-logins line in red.
      expect(chart.ink(0, 0, 600, 300)).toBeGreaterThan(20_000)
      expect(chart.countColor('#2563eb')).toBeGreaterThan(10_000)
      expect(chart.countColor('#dc2626')).toBeGreaterThan(300)
      await page.close()
    },
  )

  it('scales the email chart down to a phone screen, keeping its proportions', async () => {
    const page = await openEmail('weekly', 375)
    const [width, height] = await page
      .locator('img')
      .evaluate((i: HTMLImageElement) => [i.getBoundingClientRect().width, i.getBoundingClientRect().height])
    // The card's content box on a phone: 375 px less the page's and the card's margins (4 + 16 a side).
    expect(width).toBe(375 - 40)
    expect(height).toBeCloseTo((width * 300) / 600, 0)
    await shootTop(page, 'report-email-weekly-phone')
    await page.close()
  })

  it('embeds the same chart as inline SVG in a page: 600 × 300, its text as text, drawn', async () => {
    const { chart } = docs.get('weekly')!.doc
    const page = await browser.newPage({ viewport: { width: 800, height: 400 }, deviceScaleFactor: 2 })
    await page.setContent(`<!doctype html><body style="margin:0;padding:20px">${renderChartSvg(chart!)}</body>`)
    const svg = page.locator('svg')
    const found = await svg.evaluate((s: SVGSVGElement) => ({
      box: [s.getBoundingClientRect().width, s.getBoundingClientRect().height],
      texts: [...s.querySelectorAll('text')].map((t) => t.textContent),
      label: s.getAttribute('aria-label'),
    }))
    expect(found.box).toEqual([chartSize(chart!).width, chartSize(chart!).height])
    expect(found.label).toBe(chart!.title)
    expect(found.texts).toEqual(
      expect.arrayContaining([chart!.title, ...chart!.labels, ...chart!.series.map((s) => s.name)]),
    )
    const shot = decodePng(await svg.screenshot({ path: screenshotPath('report-chart-weekly-svg') }))
    expect([shot.width, shot.height]).toEqual([1200, 600])
    expect(shot.countColor('#2563eb')).toBeGreaterThan(10_000)
    expect(shot.countColor('#16a34a')).toBeGreaterThan(5_000)
    expect(fs.existsSync(screenshotPath('report-email-weekly'))).toBe(true)
    await page.close()
  })
})
