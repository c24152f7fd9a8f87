/**
 * How far `at` is from `now` in words a person says: `just now`, `in 5 min`, `3 h ago`, `in 29 days`. Self-contained
 * (no imports, no closures): the status page runs this very function in the browser to keep its times current.
 */
export function relativeTime(at: Date, now: Date): string {
  const ms = at.getTime() - now.getTime()
  const minutes = Math.round(Math.abs(ms) / 60_000)
  if (minutes < 1) return 'just now'
  let text: string
  if (minutes < 60) text = `${minutes} min`
  else if (minutes < 36 * 60) {
    const h = Math.floor(minutes / 60)
    const m = minutes % 60
    text = h < 10 && m > 0 ? `${h} h ${m} min` : `${Math.round(minutes / 60)} h`
  } else {
    const days = Math.round(minutes / 1440)
    text = days === 1 ? '1 day' : `${days} days`
  }
  return ms < 0 ? `${text} ago` : `in ${text}`
}
