import fs from 'node:fs'
import path from 'node:path'
import { type Browser, chromium } from 'playwright-core'

/** Debian's Chromium (`apt-get install -y chromium`); Playwright never downloads a browser of its own here. */
export const chromiumPath = '/usr/bin/chromium'

/** Whether the browser tests can run; without it they are skipped with the reason in their name. */
export const hasChromium = fs.existsSync(chromiumPath)

/** Launches headless Chromium with no sandbox, GPU or background traffic (the tests' network is loopback only). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
}

/** Where a test keeps a screenshot for people to look at: `.data/screenshots/<name>.png` (ignored by git). */
export function screenshotPath(name: string): string {
  const dir = path.resolve('.data/screenshots')
  fs.mkdirSync(dir, { recursive: true })
  return path.join(dir, `${name}.png`)
}
