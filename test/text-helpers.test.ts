import { escapeHtml, markdownTable, median, parseDuration, percentile, toMs } from '@admin-jobs/sdk'
import { createEnvReader, parseUntil, relativeTime, terminalWidth, textTable, wrap } from '@admin-jobs/sdk/platform'
import { describe, expect, it } from 'vitest'

describe('escapeHtml', () => {
  it('escapes & < > " and \' so text is safe in content and in either kind of attribute quote', () => {
    expect(escapeHtml(`<a href="x" title='y'>Tom & Jerry</a>`)).toBe(
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;Tom &amp; Jerry&lt;/a&gt;',
    )
    expect(escapeHtml('&amp;')).toBe('&amp;amp;')
    expect(escapeHtml('plain')).toBe('plain')
  })
})

describe('markdownTable', () => {
  it('renders a header, a separator and the rows, escaping pipes and flattening newlines', () => {
    expect(
      markdownTable([
        ['job', 'runs'],
        ['a|b', 3],
        ['two\nlines', 0],
      ]),
    ).toBe('| job | runs |\n| --- | --- |\n| a\\|b | 3 |\n| two lines | 0 |')
    expect(markdownTable([])).toBe('')
    expect(markdownTable([['only']])).toBe('| only |\n| --- |')
  })
})

describe('percentile and median', () => {
  it('take the nearest rank, and have no value for an empty list', () => {
    const values = [15, 20, 35, 40, 50]
    expect(percentile(values, 5)).toBe(15)
    expect(percentile(values, 30)).toBe(20)
    expect(percentile(values, 40)).toBe(20)
    expect(percentile(values, 50)).toBe(35)
    expect(percentile(values, 100)).toBe(50)
    expect(percentile([3, 1, 2], 0)).toBe(1)
    expect(percentile([], 95)).toBeUndefined()
    expect(() => percentile(values, 101)).toThrow(RangeError)
    expect(median([5, 1, 3])).toBe(3)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(median([])).toBeUndefined()
  })
})

describe('durations', () => {
  it('parse one grammar: ms, s, m or min, h and d, with decimals and optional space', () => {
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('30s')).toBe(30_000)
    expect(parseDuration('15m')).toBe(900_000)
    expect(parseDuration('90 min')).toBe(5_400_000)
    expect(parseDuration('1.5h')).toBe(5_400_000)
    expect(parseDuration('1d')).toBe(86_400_000)
    expect(parseDuration('90')).toBeUndefined()
    expect(parseDuration('90', { bare: 's' })).toBe(90_000)
    for (const bad of ['', 'soon', '-5m', '5 minutes', '2026-11-28']) expect(parseDuration(bad), bad).toBeUndefined()
    expect(toMs('90min')).toBe(5_400_000)
    expect(toMs(1200)).toBe(1200)
    expect(() => toMs('5 minutes')).toThrow('invalid duration "5 minutes"')
  })

  it('read the same way in settings (a bare number is seconds), timeouts and pause spans', () => {
    const read = createEnvReader({ A: '45', B: '2min', C: 'later' })
    expect(read.duration('A', '1m')).toBe(45_000)
    expect(read.duration('B', '1m')).toBe(120_000)
    expect(read.duration('UNSET', '1m')).toBe(60_000)
    expect(() => read.duration('C', '1m')).toThrow('C must be a duration such as 30s, 15m or 2h (got "later")')
    const now = new Date('2026-11-28T12:00:00Z')
    expect(parseUntil('90min', now).toISOString()).toBe('2026-11-28T13:30:00.000Z')
    expect(parseUntil('2h', now).toISOString()).toBe('2026-11-28T14:00:00.000Z')
    expect(parseUntil('2026-11-28 18:00', now).toISOString()).toBe('2026-11-28T18:00:00.000Z')
    expect(() => parseUntil('90', now)).toThrow('--until must be a time')
  })
})

describe('relativeTime', () => {
  const now = new Date('2026-12-02T12:00:00Z')
  const at = (ms: number) => new Date(now.getTime() + ms)
  const minute = 60_000

  it('says how far a time is in words a person says, in either direction', () => {
    expect(relativeTime(at(20_000), now)).toBe('just now')
    expect(relativeTime(at(-5 * minute), now)).toBe('5 min ago')
    expect(relativeTime(at(59 * minute), now)).toBe('in 59 min')
    expect(relativeTime(at(-3 * 60 * minute), now)).toBe('3 h ago')
    expect(relativeTime(at(134 * minute), now)).toBe('in 2 h 14 min')
    expect(relativeTime(at(-20 * 60 * minute - 10 * minute), now)).toBe('20 h ago')
    expect(relativeTime(at((717 * 60 + 51) * minute), now)).toBe('in 30 days')
    expect(relativeTime(at(-40 * 60 * minute), now)).toBe('2 days ago')
    expect(relativeTime(at(-(36 * 60 - 1) * minute), now)).toBe('36 h ago')
  })

  it('runs on its own, as the status page runs it in the browser', () => {
    const copy = new Function(`return (${relativeTime.toString()})`)() as typeof relativeTime
    expect(copy(at(-3 * 60 * minute), now)).toBe('3 h ago')
  })
})

describe('textTable', () => {
  const rows = [
    ['notifications/security-alerts', 'succeeded', 'findings=13 alerted=13 events=862', 'x'.repeat(40)],
    ['cleanup/sessions', 'failed', 'deleted=3', 'short'],
  ]
  const columns = [
    { head: 'job', min: Number.POSITIVE_INFINITY },
    { head: 'status', min: 9 },
    { head: 'result', min: 12 },
    { head: 'extra', drop: 1 },
  ]

  it('aligns columns at their natural width when there is no limit', () => {
    const text = textTable(columns, rows)
    expect(text.split('\n')[2]).toBe(`${rows[0]!.join('  ')}`)
    expect(text.split('\n')[1]).toMatch(/^-{29} {2}-{9} {2}-{33} {2}-{40}$/)
  })

  it('cuts the widest columns with … and leaves out droppable ones to fit the width', () => {
    const text = textTable(columns, rows, 60)
    const lines = text.split('\n')
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(60)
    expect(lines[0]).not.toContain('extra')
    expect(lines[2]).toMatch(/^notifications\/security-alerts {2}succeeded {2}findings=13 .*…$/)
    expect(textTable(columns, rows, 100).split('\n')[0]).toContain('extra')
  })

  it('takes COLUMNS over the terminal’s width, and no width for a pipe', () => {
    expect(terminalWidth({ COLUMNS: '80' }, 200)).toBe(80)
    expect(terminalWidth({}, 132)).toBe(132)
    expect(terminalWidth({ COLUMNS: 'wide' })).toBeUndefined()
  })

  it('wraps prose at spaces within the width', () => {
    expect(wrap('one two three four', 9)).toBe('one two\nthree\nfour')
    expect(wrap('one two', undefined)).toBe('one two')
  })
})
