// Preloaded into measured children: writes the process's own peak RSS (kB) to BENCH_RSS_FILE at exit.
import { writeFileSync } from 'node:fs'

const out = process.env.BENCH_RSS_FILE
if (out) {
  process.on('exit', () => {
    try {
      writeFileSync(out, String(process.resourceUsage().maxRSS))
    } catch {}
  })
}
