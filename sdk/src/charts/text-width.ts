// The chart is laid out before any renderer sees it (and a browser may draw the SVG in another font), so widths
// are estimated from DejaVu Sans's advance widths, by character class, erring wide: labels never collide.
const classes: [RegExp, number][] = [
  [/\p{M}/u, 0],
  [
    /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{1f300}-\u{1faff}\u{20000}-\u{3fffd}]/u,
    1.02,
  ],
  [/[ .,:;'|ijlI`]/, 0.34],
  [/[!"frtJ()[\]\-/\\]/, 0.45],
  [/[0-9a-hk-qsuvx-z$?*_{}]/, 0.65],
  [/[mwMW%@\u2014\u2026]/, 1.02],
  [/[A-Z#&+<=>^~]/, 0.86],
]

/** Estimated width in pixels of `text` at `fontSize` in DejaVu Sans (bold is about a tenth wider). */
export function textWidth(text: string, fontSize: number, bold = false): number {
  let em = 0
  for (const char of text) em += classes.find(([re]) => re.test(char))?.[1] ?? 0.86
  return em * fontSize * (bold ? 1.12 : 1)
}

/** `text` cut (with `…`) to fit `width` pixels at `fontSize`; unchanged when it fits. */
export function fitText(text: string, width: number, fontSize: number, bold = false): string {
  if (textWidth(text, fontSize, bold) <= width) return text
  const chars = [...text]
  while (chars.length && textWidth(`${chars.join('')}…`, fontSize, bold) > width) chars.pop()
  return `${chars.join('').trimEnd()}…`
}
