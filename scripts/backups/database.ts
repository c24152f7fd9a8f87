import { defineJob } from '@admin-jobs/sdk'
import { type BackupSettings, backupTimeout, readBackupSettings, runBackup } from './lib/run.ts'

export default defineJob<BackupSettings>({
  description:
    'pg_dump the admin database to BACKUP_DIR, verify it (checksum, pg_restore --list, optional full restore), prune by retention; clean up after killed runs',
  critical: true,
  exemptFromPauseAll: 'a maintenance window is when a fresh backup matters most',
  timeout: backupTimeout,
  // A failed pg_dump is rarely fixed by dumping again at once; the next scheduled run (or a workflow re-run) retries.
  retry: false,
  flags: {
    verify: {
      type: 'string',
      value: 'file|latest',
      description: 'verify an existing dump (a file in BACKUP_DIR, or the newest recorded) instead of taking one',
    },
  },
  settings: readBackupSettings,
  run: runBackup,
})
