/** A deterministic pseudo-random source (mulberry32); every helper draws from the same stream. */
export interface Random {
  next(): number
  int(min: number, max: number): number
  chance(p: number): boolean
  pick<T>(items: readonly T[]): T
  hex(bytes: number): string
  uuid(): string
}

/** Creates the seeded pseudo-random source. */
export function createRandom(seed: number): Random {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1))
  const hex = (bytes: number) => {
    let out = ''
    for (let i = 0; i < bytes; i++) out += int(0, 255).toString(16).padStart(2, '0')
    return out
  }
  return {
    next,
    int,
    chance: (p) => next() < p,
    pick: (items) => items[Math.floor(next() * items.length)]!,
    hex,
    uuid() {
      const h = hex(16)
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[int(0, 3)]}${h.slice(17, 20)}-${h.slice(20)}`
    },
  }
}
