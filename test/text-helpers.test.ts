import { escapeHtml, markdownTable, median, parseDuration, percentile, toMs } from '@admin-jobs/sdk'
import { createEnvReader, parseUntil } from '@admin-jobs/sdk/platform'
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
