import { defineJob } from '@admin-jobs/sdk'
import { watch, watchdogSettings } from './lib/watchdog.ts'

export default defineJob({
  description: 'Alert on missed and repeatedly failing runs; re-enable workflows GitHub disabled for inactivity',
  critical: true,
  timeout: '5m',
  settings: watchdogSettings,
  run: watch,
})
