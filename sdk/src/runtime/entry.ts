import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/**
 * The real path of the script this process was started with (`process.argv[1]`, symlinks resolved), or undefined
 * when there is none or it cannot be resolved (a REPL, `node -e`, a path that no longer exists).
 */
export function entryScript(argv: readonly string[] = process.argv): string | undefined {
  const file = argv[1]
  if (!file) return undefined
  try {
    return realpathSync(file)
  } catch {
    return undefined
  }
}

/** True when the module at `moduleUrl` (its `import.meta.url`) is the script this process was started with. */
export function isMainModule(moduleUrl: string, argv: readonly string[] = process.argv): boolean {
  const entry = entryScript(argv)
  if (!entry) return false
  try {
    return realpathSync(fileURLToPath(moduleUrl)) === entry
  } catch {
    return false
  }
}
