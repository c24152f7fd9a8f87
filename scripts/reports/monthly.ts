import { defineJob } from '@admin-jobs/sdk'
import { reportJob } from './lib/run.ts'

export default defineJob(
  reportJob('monthly', 'Monthly compliance report for the previous month, ending in a checklist of findings', {
    critical: true,
  }),
)
