import { defineJob } from '@admin-jobs/sdk'
import { watch, watchdogSettings } from './lib/watchdog.ts'

export default defineJob({
  description:
    'Judge every schedule by its slots and learned lateness: catch up late jobs by dispatch, alert on stopped and repeatedly failing jobs, keep workflows from the inactivity disable',
  critical: true,
  timeout: '5m',
  settings: watchdogSettings,
  run: watch,
})
