import fs from 'node:fs'
import path from 'node:path'

/** The repository root: the nearest ancestor of this module holding `.github/workflows`. */
export function repoRoot(from = path.dirname(new URL(import.meta.url).pathname)): string {
  let dir = from
  for (;;) {
    if (fs.existsSync(path.join(dir, '.github', 'workflows'))) return dir
    const parent = path.dirname(dir)
    if (parent === dir) return process.cwd()
    dir = parent
  }
}
