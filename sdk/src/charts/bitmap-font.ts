// A 5×7 pixel font: each glyph is 7 rows of 5 bits (most significant bit left), as 14 hex digits.
const glyphs: Record<string, string> = {
  ' ': '00000000000000',
  '0': '0e11131519110e',
  '1': '040c040404040e',
  '2': '0e11010204081f',
  '3': '1f02040201110e',
  '4': '02060a121f0202',
  '5': '1f101e0101110e',
  '6': '0608101e11110e',
  '7': '1f010204080808',
  '8': '0e11110e11110e',
  '9': '0e11110f01020c',
  A: '0e1111111f1111',
  B: '1e11111e11111e',
  C: '0e11101010110e',
  D: '1c12111111121c',
  E: '1f10101e10101f',
  F: '1f10101e101010',
  G: '0e11101711110f',
  H: '1111111f111111',
  I: '0e04040404040e',
  J: '0702020202120c',
  K: '11121418141211',
  L: '1010101010101f',
  M: '111b1515111111',
  N: '11111915131111',
  O: '0e11111111110e',
  P: '1e11111e101010',
  Q: '0e11111115120d',
  R: '1e11111e141211',
  S: '0f10100e01011e',
  T: '1f040404040404',
  U: '1111111111110e',
  V: '11111111110a04',
  W: '1111111515150a',
  X: '11110a040a1111',
  Y: '1111110a040404',
  Z: '1f01020408101f',
  '-': '0000001f000000',
  '.': '00000000000c0c',
  ':': '000c0c000c0c00',
  '%': '18190204081303',
  '/': '00010204081000',
  '+': '0004041f040400',
  '(': '02040808080402',
  ')': '08040202020408',
  ',': '000000000c0408',
  _: '0000000000001f',
  '#': '0a0a1f0a1f0a0a',
  '?': '0e110102040004',
}

/** Width and height of one glyph in pixels; characters advance by width + 1. */
export const glyphSize = { width: 5, height: 7 } as const

/** The 7 row bitmasks of `char` (letters are drawn upper-case; unknown characters as `?`). */
export function glyphRows(char: string): number[] {
  const hex = glyphs[char] ?? glyphs[char.toUpperCase()] ?? glyphs['?']!
  const rows: number[] = []
  for (let i = 0; i < 14; i += 2) rows.push(Number.parseInt(hex.slice(i, i + 2), 16))
  return rows
}

/** The width in pixels of `text` drawn at `scale`. */
export function textWidth(text: string, scale = 1): number {
  return text.length === 0 ? 0 : (text.length * (glyphSize.width + 1) - 1) * scale
}
