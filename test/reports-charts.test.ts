import { inflateSync } from 'node:zlib'
import { niceMax, renderChartMermaid, renderChartPng } from '@admin-jobs/sdk'
import { crc32, encodePng, glyphRows, textWidth } from '@admin-jobs/sdk/platform'
import { describe, expect, it } from 'vitest'

/** A minimal PNG reader for the encoder's own output: checks every CRC and returns RGB rows. */
function decodePng(png: Buffer) {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
  let offset = 8
  const chunks: { type: string; data: Buffer }[] = []
  while (offset < png.length) {
    const length = png.readUInt32BE(offset)
    const type = png.toString('ascii', offset + 4, offset + 8)
    const data = png.subarray(offset + 8, offset + 8 + length)
    expect(png.readUInt32BE(offset + 8 + length), `CRC of ${type}`).toBe(
      crc32(png.subarray(offset + 4, offset + 8 + length)),
    )
    chunks.push({ type, data })
    offset += 12 + length
  }
  expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND'])
  const header = chunks[0].data
  const width = header.readUInt32BE(0)
  const height = header.readUInt32BE(4)
  expect([header[8], header[9]]).toEqual([8, 2])
  const raw = inflateSync(chunks[1].data)
  expect(raw.length).toBe((width * 3 + 1) * height)
  const pixel = (x: number, y: number) => {
    const i = y * (width * 3 + 1) + 1 + x * 3
    return `#${raw.subarray(i, i + 3).toString('hex')}`
  }
  return { width, height, pixel }
}

describe('PNG encoder', () => {
  it('computes the standard CRC-32 check value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926)
  })

  it('round-trips exact pixels through IHDR, zlib IDAT and IEND', () => {
    const rgb = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])
    const { width, height, pixel } = decodePng(encodePng(2, 2, rgb))
    expect([width, height]).toEqual([2, 2])
    expect([pixel(0, 0), pixel(1, 0), pixel(0, 1), pixel(1, 1)]).toEqual(['#ff0000', '#00ff00', '#0000ff', '#0a141e'])
  })

  it('refuses a pixel buffer of the wrong size', () => {
    expect(() => encodePng(2, 2, new Uint8Array(11))).toThrow(/expected 12 RGB bytes/)
  })
})

describe('chart rasteriser', () => {
  it('draws a bar only where the value is above zero, in the series colour', () => {
    const { width, height, pixel } = decodePng(
      renderChartPng({
        title: 'Test',
        labels: ['a', 'b'],
        series: [{ name: 'n', values: [0, 8], color: '#2563eb' }],
        width: 200,
        height: 120,
      }),
    )
    expect([width, height]).toEqual([200, 120])
    const blueIn = (x0: number, x1: number) => {
      let n = 0
      for (let y = 45; y < height; y++) for (let x = x0; x < x1; x++) if (pixel(x, y) === '#2563eb') n++
      return n
    }
    expect(blueIn(0, 100)).toBe(0)
    expect(blueIn(100, 200)).toBeGreaterThan(100)
  })

  it('writes the title with the bitmap font in ink', () => {
    const { pixel } = decodePng(renderChartPng({ title: 'HI', labels: [], series: [], width: 80, height: 80 }))
    let ink = 0
    for (let y = 8; y < 22; y++) for (let x = 12; x < 12 + textWidth('HI', 2); x++) if (pixel(x, y) === '#1f2937') ink++
    // H is 5 + 2 + 5 lit columns per row... just check it is neither empty nor a filled box.
    expect(ink).toBeGreaterThan(20)
    expect(ink).toBeLessThan(textWidth('HI', 2) * 14)
  })

  it('has a 5×7 glyph for every character the reports print, and ? for the rest', () => {
    for (const char of 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -.:%/+(),_#') {
      const rows = glyphRows(char)
      expect(rows).toHaveLength(7)
      expect(rows.every((r) => r >= 0 && r < 32)).toBe(true)
    }
    expect(glyphRows('a')).toEqual(glyphRows('A'))
    expect(glyphRows('€')).toEqual(glyphRows('?'))
    expect(glyphRows('1')).not.toEqual(glyphRows('7'))
  })

  it('rounds axis maxima up to 1, 2, 2.5 or 5 times a power of ten', () => {
    expect([niceMax(0), niceMax(7), niceMax(11), niceMax(230), niceMax(4100)]).toEqual([1, 10, 20, 250, 5000])
  })
})

describe('mermaid chart', () => {
  it('renders an xychart-beta block with labels, bars and lines', () => {
    const text = renderChartMermaid({
      title: 'Logins "per" day',
      labels: ['Mon', 'Tue'],
      series: [
        { name: 'Logins', values: [3, 5] },
        { name: 'Failed', values: [1, 0], type: 'line' },
      ],
    })
    expect(text).toBe(
      [
        '```mermaid',
        'xychart-beta',
        `  title "Logins 'per' day"`,
        '  x-axis ["Mon", "Tue"]',
        '  y-axis 0 --> 8',
        '  bar [3, 5]',
        '  line [1, 0]',
        '```',
      ].join('\n'),
    )
  })
})
