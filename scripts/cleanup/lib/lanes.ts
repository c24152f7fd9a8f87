/**
 * Runs `fn` over `items`, at most `lanes` at a time, in order of start, and returns the results in item order. The
 * first failure makes `stopped()` true for the calls under way and starts no new ones; it is thrown once every call
 * under way has settled, so nothing is left running behind the caller.
 */
export async function inLanes<T, R>(
  items: readonly T[],
  lanes: number,
  fn: (item: T, stopped: () => boolean) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  let failed = false
  const stopped = () => failed
  const lane = async () => {
    while (!failed && next < items.length) {
      const i = next++
      try {
        results[i] = await fn(items[i]!, stopped)
      } catch (err) {
        failed = true
        throw err
      }
    }
  }
  const settled = await Promise.allSettled(Array.from({ length: Math.max(1, Math.min(lanes, items.length)) }, lane))
  const error = settled.find((s) => s.status === 'rejected')
  if (error) throw error.reason
  return results
}
