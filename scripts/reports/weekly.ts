import { defineJob } from '@admin-jobs/sdk'
import { reportJob } from '@admin-jobs/sdk/reports/run.ts'

export default defineJob(
  reportJob(
    'weekly',
    'Weekly analytics for the previous Monday–Sunday: daily series, week-over-week, admins, busy hours',
  ),
)
