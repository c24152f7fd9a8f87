import { createRequire } from 'node:module'
import type { ChartSpec } from './chart.ts'
import { renderChartSvg } from './svg.ts'

const fontFiles = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf']

/**
 * The font files charts are drawn with: DejaVu Sans regular and bold from npm `dejavu-fonts-ttf` (Latin, Greek,
 * Cyrillic, Armenian, Georgian, Hebrew, Arabic; no CJK).
 */
export function chartFontFiles(): string[] {
  const require = createRequire(import.meta.url)
  return fontFiles.map((file) => require.resolve(`dejavu-fonts-ttf/ttf/${file}`))
}

/**
 * Renders the chart to PNG with resvg (no browser, no network) at `spec.pixelRatio` (default 2) device pixels per
 * CSS pixel. Only the shipped fonts are loaded, never the system's, so every machine draws the same pixels. The
 * renderer is imported on first use: jobs that draw no chart never load it.
 */
export async function renderChartPng(spec: ChartSpec): Promise<Buffer> {
  const { Resvg } = await import('@resvg/resvg-js')
  const resvg = new Resvg(renderChartSvg(spec), {
    font: {
      fontFiles: chartFontFiles(),
      loadSystemFonts: false,
      defaultFontFamily: 'DejaVu Sans',
      sansSerifFamily: 'DejaVu Sans',
    },
    fitTo: { mode: 'zoom', value: spec.pixelRatio ?? 2 },
    background: '#ffffff',
  })
  return resvg.render().asPng()
}
