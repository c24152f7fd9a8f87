import {
  type ChartSpec,
  chartAxis,
  formatTicks,
  renderChartMermaid,
  renderChartPng,
  renderChartSvg,
} from '@admin-jobs/sdk/charts'
import { escapeXml, fitText, textWidth } from '@admin-jobs/sdk/platform'
import { describe, expect, it } from 'vitest'
import { decodePng as decode } from './support/png.ts'

const titleOnly = (title: string): ChartSpec => ({ title, labels: [], series: [] })
// The title's band: 16 px bold text on a baseline at y = 29.
const titleBand = [12, 34] as const

describe('chart renderer', () => {
  // This test runs first in the file: nothing before it has drawn a PNG in this process.
  it('is loaded only when a PNG is drawn, so jobs without charts never load it', async () => {
    const resvgLoaded = () =>
      (process.report.getReport() as { sharedObjects: string[] }).sharedObjects.some((file) => file.includes('resvg'))
    renderChartSvg(titleOnly('SVG only'))
    renderChartMermaid(titleOnly('Mermaid only'))
    expect(resvgLoaded()).toBe(false)
    await renderChartPng(titleOnly('PNG'))
    expect(resvgLoaded()).toBe(true)
  })
})

describe('chart axis', () => {
  it('ends at a round number within 1.25× of the data maximum: 455 → 500, 1,001 → 1,200', () => {
    const a = chartAxis([120, 455])
    expect(a.max).toBeGreaterThanOrEqual(455)
    expect(a.max).toBeLessThanOrEqual(568)
    expect(a.max).toBe(500)
    const b = chartAxis([1001])
    expect(b.max).toBeLessThanOrEqual(1251)
    expect(b.max).toBe(1200)
    expect(b.ticks).toEqual([0, 200, 400, 600, 800, 1000, 1200])
  })

  it('stays within 1.25× with evenly spaced round ticks from 0 to the maximum, for every count up to 20,000 and for fractions', () => {
    // A small deterministic generator: maxima spread over twelve orders of magnitude.
    let seed = 7
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      return seed / 2 ** 31
    }
    const maxima = [
      ...Array.from({ length: 20_000 }, (_, i) => i + 1),
      ...Array.from({ length: 5_000 }, () => 10 ** (random() * 12 - 3)),
      15.82,
      0.001,
      1e9 + 1,
    ]
    const close = (a: number, b: number) => Math.abs(a - b) <= Math.abs(b) * 1e-9
    const wrong = maxima.flatMap((max) => {
      const { min, max: top, ticks } = chartAxis([max / 3, max])
      const step = ticks[1] - ticks[0]
      const ok =
        min === 0 &&
        top >= max &&
        top <= max * 1.25 &&
        ticks[0] === 0 &&
        close(ticks.at(-1)!, top) &&
        ticks.length >= 2 &&
        ticks.length <= 14 &&
        ticks.every((t, i) => close(t, i * step))
      return ok ? [] : [{ max, top, ticks }]
    })
    expect(wrong).toEqual([])
  })

  it('gives counts whole-number ticks only, and fractions fractional ones', () => {
    expect(chartAxis([3, 1]).ticks).toEqual([0, 1, 2, 3])
    expect(chartAxis([1]).ticks).toEqual([0, 1])
    expect(chartAxis([0.3]).ticks).toEqual([0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3])
  })

  it('gives an empty or all-zero chart the axis 0–1, and includes negative values', () => {
    expect(chartAxis([])).toMatchObject({ min: 0, max: 1 })
    expect(chartAxis([0, 0, Number.NaN])).toMatchObject({ min: 0, max: 1 })
    const mixed = chartAxis([-40, 90])
    expect(mixed.min).toBeLessThanOrEqual(-40)
    expect(mixed.min).toBeGreaterThanOrEqual(-50)
    expect(mixed.max).toBeLessThanOrEqual(112.5)
    expect(mixed.ticks).toContain(0)
  })

  it('labels ticks with thousands separators, and an axis that reaches millions compactly throughout', () => {
    expect(formatTicks([0, 0.25, 1500, 20_000])).toEqual(['0', '0.25', '1,500', '20,000'])
    expect(formatTicks(chartAxis([2_600_000]).ticks)).toEqual(['0', '500K', '1M', '1.5M', '2M', '2.5M', '3M'])
    expect(formatTicks([0, 12_000_000_000])).toEqual(['0', '12B'])
  })
})

describe('chart SVG', () => {
  const week: ChartSpec = {
    title: 'Logins per day',
    labels: ['Mon 16', 'Tue 17', 'Wed 18', 'Thu 19', 'Fri 20', 'Sat 21', 'Sun 22'],
    series: [
      { name: 'Logins', values: [1001, 800, 0, 720, 900, 300, 200] },
      { name: 'Failed logins', values: [30, 40, 12, Number.NaN, 8, 3, 1], type: 'line', color: '#dc2626' },
    ],
  }

  it('escapes every text, so markup and characters XML cannot hold in a title are shown, not parsed', async () => {
    const title = `<script>alert("x")</script> & 'co' \u0007 done`
    const svg = renderChartSvg({ ...week, title, labels: ['<b>', ...week.labels.slice(1)] })
    expect(svg).not.toContain('<script>')
    expect(svg).not.toContain('<b>')
    expect(svg).not.toContain('\u0007')
    expect(svg).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39; \ufffd done')
    expect(escapeXml('a\ud800b\ufffe')).toBe('a\ufffdb\ufffd')
    // resvg parses the SVG as XML: an unescaped character would make it refuse the document.
    const png = decode(await renderChartPng({ ...week, title }))
    expect(png.ink(16, 12, 300, 34)).toBeGreaterThan(200)
  })

  it('draws a bar for each non-zero value, a dot for each point, and breaks the line at a missing value', () => {
    const svg = renderChartSvg(week)
    const bars = svg.match(/<rect [^>]*fill="#2563eb"><title>/g) ?? []
    expect(bars).toHaveLength(6)
    expect(svg.match(/<circle [^>]*><title>/g) ?? []).toHaveLength(6)
    expect(svg).toContain('<title>Mon 16: Logins 1,001</title>')
    // Two runs (Mon–Wed, Fri–Sun), each drawn as a white halo and the line.
    expect(svg.match(/<polyline [^>]*stroke="#dc2626"/g) ?? []).toHaveLength(2)
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="600" height="300" viewBox="0 0 600 300"/)
  })

  it('thins the category labels of a month so that no two overlap, and keeps them inside the chart', () => {
    const labels = Array.from({ length: 31 }, (_, i) => String(i + 1).padStart(2, '0'))
    for (const spec of [
      { ...week, labels, series: [{ name: 'Logins', values: labels.map(Number) }] },
      {
        ...week,
        labels: labels.map((l) => `Day number ${l}`),
        series: [{ name: 'Logins', values: labels.map(Number) }],
      },
      { ...week, width: 320 },
    ]) {
      const svg = renderChartSvg(spec)
      const shown = [
        ...svg.matchAll(
          /<text x="([\d.]+)" y="([\d.]+)" font-size="13" fill="#1f2937" text-anchor="middle">([^<]*)<\/text>/g,
        ),
      ]
        .filter((m) => Number(m[2]) > 250)
        .map((m) => ({ x: Number(m[1]), half: textWidth(m[3], 13) / 2 }))
      expect(shown.length).toBeGreaterThan(3)
      for (const [i, label] of shown.entries()) {
        expect(label.x - label.half).toBeGreaterThanOrEqual(0)
        expect(label.x + label.half).toBeLessThanOrEqual(spec.width ?? 600)
        if (i) expect(label.x - label.half).toBeGreaterThan(shown[i - 1].x + shown[i - 1].half)
      }
    }
  })

  it('gives series without a colour palette colours that no other series asked for', () => {
    const svg = renderChartSvg({
      title: 'Colours',
      labels: ['a'],
      series: [
        { name: 'Logins', values: [3] },
        { name: 'Errors', values: [2], color: '#2563EB' },
        { name: 'Retries', values: [1], type: 'line' },
      ],
    })
    // The legend's swatches are the childless shapes other than the white background.
    const legend = [...svg.matchAll(/<(?:rect|circle) [^>]*fill="(#[0-9a-fA-F]{6})"\/>/g)]
      .map((m) => m[1].toLowerCase())
      .filter((c) => c !== '#ffffff')
    expect(legend).toEqual(['#16a34a', '#2563eb', '#dc2626'])
  })

  it('cuts a title too long for the chart with an ellipsis', () => {
    const long = 'Logins of every user of every tenant in every region, hour by hour, for the whole month'
    const cut = fitText(long, 568, 16, true)
    expect(cut.endsWith('…')).toBe(true)
    expect(textWidth(cut, 16, true)).toBeLessThanOrEqual(568)
    expect(renderChartSvg(titleOnly(long))).toContain(`>${cut}</text>`)
  })
})

describe('chart PNG', () => {
  it('is a PNG at twice the CSS size by default, or at the pixel ratio asked for', async () => {
    const png = await renderChartPng({ title: 'Size', labels: ['a'], series: [{ name: 'n', values: [1] }] })
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
    expect(png.toString('ascii', 12, 16)).toBe('IHDR')
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([1200, 600])
    const small = decode(
      await renderChartPng({ title: 'Size', labels: [], series: [], width: 320, height: 200, pixelRatio: 1 }),
    )
    expect([small.width, small.height]).toEqual([320, 200])
  })

  it('draws a bar in its series colour only where the value is above zero', async () => {
    const png = decode(
      await renderChartPng({
        title: 'Bars',
        labels: ['a', 'b'],
        series: [{ name: 'n', values: [0, 8], color: '#2563eb' }],
      }),
    )
    const blue = (x0: number, x1: number) => {
      let n = 0
      for (let y = 140; y < 520; y++) {
        for (let x = x0; x < x1; x++) if (png.at(x, y).join() === '37,99,235') n++
      }
      return n
    }
    expect(blue(0, 600)).toBe(0)
    expect(blue(600, 1200)).toBeGreaterThan(10_000)
  })

  it('renders titles as real glyphs: accented letters differ from plain ones, and longer titles ink more', async () => {
    const [plain, accented, grave, umlaut, question, long] = await Promise.all(
      ['cafe', 'café', 'cafè', 'Übersicht', '?bersicht', 'Übersicht — café résumé'].map(async (t) => {
        const png = decode(await renderChartPng(titleOnly(t)))
        return {
          ink: png.ink(0, titleBand[0], 600, titleBand[1]),
          extent: png.inkExtent(...titleBand),
          picture: png.picture(0, titleBand[0], 600, titleBand[1]),
        }
      }),
    )
    expect(plain.ink).toBeGreaterThan(100)
    expect(accented.ink).toBeGreaterThan(plain.ink)
    // A renderer that drew every non-ASCII letter as one placeholder glyph would draw these pairs alike.
    expect(accented.picture).not.toBe(grave.picture)
    expect(umlaut.picture).not.toBe(question.picture)
    expect(long.extent!.right - long.extent!.left).toBeGreaterThan(2 * (umlaut.extent!.right - umlaut.extent!.left))
    // An unknown title in DejaVu Sans's bold face is about 9.5 px per character at 16 px.
    expect(long.extent!.right - long.extent!.left).toBeGreaterThan(180)
  })

  it('never draws text wider than the layout estimated, so labels laid out by the estimate cannot collide', async () => {
    const samples = [
      'Logins by hour',
      'Logins per day',
      'Übersicht — café résumé',
      'WWW MMM mmm www',
      'iiil.,:;|',
      'Сводка Ж Д',
      '1,234,567 0.25 12B',
      'Mon 16 Tue 17 Wed 18',
      '#%&@+<=>^~',
    ]
    for (const text of samples) {
      const title = decode(await renderChartPng(titleOnly(text))).inkExtent(...titleBand)!
      expect(title.right - 16, `title ${text}`).toBeLessThanOrEqual(textWidth(text, 16, true))
      expect(textWidth(text, 16, true), `title ${text}`).toBeLessThanOrEqual((title.right - 16) * 1.45 + 8)
      // The legend row: a swatch, then the series name from x = 32 in 13 px regular.
      const legend = decode(
        await renderChartPng({ title: '', labels: [], series: [{ name: text, values: [] }] }),
      ).inkExtent(40, 56, 30)!
      expect(legend.right - 32, `legend ${text}`).toBeLessThanOrEqual(textWidth(text, 13))
    }
  })

  it('draws a character the font lacks (CJK) as a visible box, not as nothing', async () => {
    const png = decode(await renderChartPng(titleOnly('日本')))
    expect(png.ink(0, titleBand[0], 600, titleBand[1])).toBeGreaterThan(50)
  })
})

describe('mermaid chart', () => {
  it('renders an xychart-beta block with labels, bars, lines and the same round axis as the PNG', () => {
    const text = renderChartMermaid({
      title: 'Logins "per" day',
      labels: ['Mon', 'Tue'],
      series: [
        { name: 'Logins', values: [455, 5] },
        { name: 'Failed', values: [1, Number.NaN], type: 'line' },
      ],
    })
    expect(text).toBe(
      [
        '```mermaid',
        'xychart-beta',
        `  title "Logins 'per' day"`,
        '  x-axis ["Mon", "Tue"]',
        '  y-axis 0 --> 500',
        '  bar [455, 5]',
        '  line [1, 0]',
        '```',
      ].join('\n'),
    )
    expect(renderChartMermaid({ title: 't', labels: ['a'], series: [{ name: 'n', values: [1001] }] })).toContain(
      'y-axis 0 --> 1200',
    )
  })
})
