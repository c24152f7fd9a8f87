import { describe, expect, it } from 'vitest'
import { bursts, subtract } from '#notifications'

const t0 = Date.parse('2026-11-28T12:00:00Z')
const attempts = (minutes: number[], subject = '203.0.113.1') =>
  minutes.map((m, i) => ({ id: String(i + 1), subject, at: new Date(t0 + m * 60_000), ip: subject, email: null }))
const window = 15 * 60_000

describe('bursts', () => {
  it('finds a window that reaches the threshold and none one below it', () => {
    const ten = attempts([0, 1, 2, 3, 4, 5, 6, 7, 8, 14.9])
    expect(bursts(ten, ten, 10, window)).toHaveLength(1)
    expect(bursts(ten.slice(0, 9), ten, 10, window)).toHaveLength(0)
  })

  it('does not count attempts exactly one window apart as one window', () => {
    const spread = attempts([0, 1, 2, 3, 4, 5, 6, 7, 8, 15])
    expect(bursts(spread, spread, 10, window)).toHaveLength(0)
  })

  it('ignores breaches made only of rows evaluated before', () => {
    const old = attempts([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 40])
    expect(bursts(old, [{ id: '11' }], 10, window)).toHaveLength(0)
    expect(bursts(old, [{ id: '10' }], 10, window)).toHaveLength(1)
  })

  it('merges overlapping windows into one burst from its first to its last attempt', () => {
    const long = attempts(Array.from({ length: 40 }, (_, i) => i))
    const [burst, ...rest] = bursts(long, long, 10, window)
    expect(rest).toEqual([])
    expect(burst!.attempts).toHaveLength(40)
    expect(burst!.start.getTime()).toBe(t0)
    expect(burst!.end.getTime()).toBe(t0 + 39 * 60_000)
  })
})

describe('subtract', () => {
  const gap = { from: '10', to: '20', xmax: '1', seenAt: '2026-11-28T12:00:00Z' }
  it('splits a gap around the ids that filled it', () => {
    expect(subtract(gap, [10n, 15n, 16n, 25n]).map((g) => [g.from, g.to])).toEqual([
      ['11', '14'],
      ['17', '20'],
    ])
    expect(subtract(gap, [])).toEqual([gap])
    expect(subtract({ ...gap, to: '10' }, [10n])).toEqual([])
  })
})
