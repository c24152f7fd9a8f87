import { PNG } from 'pngjs'

/**
 * Decodes a PNG with an independent decoder (pngjs). Boxes are in CSS pixels, `ratio` device pixels each; a pixel is
 * inked when any channel is below 200 (text, bars and lines on white).
 */
export function decodePng(png: Buffer, ratio = 2) {
  const image = PNG.sync.read(png)
  const at = (x: number, y: number) => {
    const i = (y * image.width + x) * 4
    return [image.data[i], image.data[i + 1], image.data[i + 2]] as const
  }
  const inked = (x: number, y: number) => at(x, y).some((c) => c < 200)
  const box = (x0: number, y0: number, x1: number, y1: number) => ({
    x0: Math.max(0, Math.round(x0 * ratio)),
    y0: Math.max(0, Math.round(y0 * ratio)),
    x1: Math.min(image.width, Math.round(x1 * ratio)),
    y1: Math.min(image.height, Math.round(y1 * ratio)),
  })
  return {
    width: image.width,
    height: image.height,
    at,
    ink(x0: number, y0: number, x1: number, y1: number) {
      const b = box(x0, y0, x1, y1)
      let n = 0
      for (let y = b.y0; y < b.y1; y++) for (let x = b.x0; x < b.x1; x++) if (inked(x, y)) n++
      return n
    },
    /** How many pixels of the whole image are within `tolerance` (per channel) of the colour `#rrggbb`. */
    countColor(hex: string, tolerance = 24) {
      const want = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16))
      let n = 0
      for (let i = 0; i < image.data.length; i += 4) {
        if (want.every((c, k) => Math.abs(image.data[i + k] - c) <= tolerance)) n++
      }
      return n
    },
    /** The box's pixels as a string of inked (1) and blank (0) cells, to compare two renderings. */
    picture(x0: number, y0: number, x1: number, y1: number) {
      const b = box(x0, y0, x1, y1)
      const rows: string[] = []
      for (let y = b.y0; y < b.y1; y++) {
        let row = ''
        for (let x = b.x0; x < b.x1; x++) row += inked(x, y) ? '1' : '0'
        rows.push(row)
      }
      return rows.join('\n')
    },
    /** The inked columns' extent in CSS pixels within a band of rows (null when the band is blank). */
    inkExtent(y0: number, y1: number, fromX = 0) {
      const b = box(fromX, y0, 1e9, y1)
      let left = Number.POSITIVE_INFINITY
      let right = -1
      for (let y = b.y0; y < b.y1; y++) {
        for (let x = b.x0; x < b.x1; x++) {
          if (!inked(x, y)) continue
          left = Math.min(left, x)
          right = Math.max(right, x)
        }
      }
      return right < 0 ? null : { left: left / ratio, right: (right + 1) / ratio }
    },
  }
}
