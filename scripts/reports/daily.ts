import { defineJob } from '@admin-jobs/sdk'
import { reportJob } from './lib/run.ts'

export default defineJob(
  reportJob(
    'daily',
    'Daily activity report for the previous day: logins, failures, role changes, exports, alerts, job runs',
  ),
)
