import type { ChartSpec } from '@admin-jobs/sdk/charts'
import type { Bounds } from './period.ts'

/** One headline number, with the previous period's figure when the report compares. */
export interface Metric {
  key: string
  label: string
  value: number
  previous?: number
  /** How the figure was computed, in a few words (shown beside it). */
  note?: string
}

/** A table of a report section; cells are text or numbers (null renders as a dash). */
export interface Table {
  columns: readonly string[]
  rows: readonly (readonly (string | number | null)[])[]
}

/** One section: a table (or a note), and the sentence shown when it has no rows. */
export interface Section {
  title: string
  table?: Table
  note?: string
  empty: string
}

/** A checklist item of the monthly report: something that needs action. */
export interface Finding {
  severity: 'critical' | 'warning' | 'info'
  text: string
}

/** A rendered-agnostic report: what every output format (markdown, HTML, CSV, JSON, Slack) is made from. */
export interface ReportDocument {
  title: string
  bounds: Bounds
  periodLabel: string
  headline: readonly Metric[]
  chart?: ChartSpec
  sections: readonly Section[]
  /** Monthly only: the findings that need action (an empty list renders "nothing needs action"). */
  findings?: readonly Finding[]
  /** The raw figures, stored in jobs.reports and written as JSON. */
  data: Record<string, unknown>
}

/** Relative change from `previous` to `value` in percent (null when previous is 0 and value is not). */
export function percentChange(value: number, previous: number): number | null {
  if (previous === 0) return value === 0 ? 0 : null
  return Math.round(((value - previous) / previous) * 1000) / 10
}

/** `+12.5%`, `-3%`, `0%`, or `new` when there was nothing before. */
export function formatChange(value: number, previous: number): string {
  const change = percentChange(value, previous)
  if (change === null) return 'new'
  return `${change > 0 ? '+' : ''}${change}%`
}
