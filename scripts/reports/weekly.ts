import { defineJob } from '@admin-jobs/sdk'
import { reportJob } from './lib/run.ts'

export default defineJob(
  reportJob(
    'weekly',
    'Weekly analytics for the previous Monday–Sunday: daily series, week-over-week, admins, busy hours',
  ),
)
