// Charts as SVG, PNG (resvg, loaded on first use) and mermaid: `@admin-jobs/sdk/charts`, apart from the job API so
// that a job which draws nothing loads none of it.
export { type ChartAxis, chartAxis, formatTicks } from './axis.ts'
export { type ChartSeries, type ChartSpec, type Color, chartPalette, chartSize } from './chart.ts'
export { renderChartMermaid } from './mermaid.ts'
export { chartFontFiles, renderChartPng } from './png.ts'
export { chartFontFamily, renderChartSvg } from './svg.ts'
