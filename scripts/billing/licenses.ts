import { defineJob } from '@admin-jobs/sdk'
import { type BillingSettings, readBillingSettings, runBilling } from './lib/run.ts'

export default defineJob<BillingSettings>({
  description:
    'Expire licenses and subscriptions whose dates have passed, notify customers and admins, alert on seat over-allocation',
  timeout: '15m',
  settings: (read) => readBillingSettings(read),
  run: runBilling,
})
