import path from 'node:path'
import { type DoctorCheck, runDoctor } from '../../doctor/doctor.ts'
import { repoRoot } from '../../schedules/schedules.ts'
import type { Command } from './command.ts'

/** Renders the doctor's checks one line each: `✓ name: detail` or `✗ name: detail (fix: …)`. */
export function renderChecks(checks: readonly DoctorCheck[]): string {
  const width = Math.max(...checks.map((c) => c.name.length))
  return checks
    .map((c) => `${c.ok ? '✓' : '✗'} ${c.name.padEnd(width)}  ${c.detail}${!c.ok && c.fix ? `  (fix: ${c.fix})` : ''}`)
    .join('\n')
}

/** `pnpm jobs doctor [--json] [--send-test] [--plan free|pro|team|<minutes>]`: the preflight of a deployment. */
const doctor: Command = {
  name: 'doctor',
  usage: 'doctor [--json] [--send-test] [--plan free|pro|team|<minutes>]',
  description: 'preflight of a deployment: settings, database, channels, heartbeat, GitHub token, workflows, minutes',
  flags: {
    json: { type: 'boolean', description: 'print { ok, checks: [{ name, ok, detail, fix }] }' },
    'send-test': {
      type: 'boolean',
      description: 'queue one test message to the admins through the outbox and deliver it at once',
    },
    plan: {
      type: 'string',
      value: 'free|pro|team|minutes',
      description: 'the GitHub plan the estimated minutes are held against (default free: 2,000 a month)',
    },
    root: { type: 'string', value: 'dir', description: 'repository whose workflows are read (default: this checkout)' },
  },
  settings: [
    {
      name: 'DATABASE_URL, SMTP_URL, ALERT_EMAIL_TO, SLACK_WEBHOOK_URL, HEARTBEAT_URL',
      kind: 'see docs/reference.md',
      description: 'checked as the jobs read them',
    },
    {
      name: 'GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL',
      kind: 'text',
      description: 'read-only calls: the repository, its workflows and runs',
    },
  ],
  notes: ['Only reads, except --send-test (one message) and nothing on GitHub: every GitHub call is a GET.'],
  exitCodes: [
    { code: '0', meaning: 'every check passed' },
    { code: '1', meaning: 'at least one check failed (its line says how to fix it)' },
  ],
  async run({ flags }, io) {
    const root = path.resolve((flags.root as string | undefined) ?? io.env.ADMIN_JOBS_ROOT ?? repoRoot())
    const checks = await runDoctor(io.env, {
      root,
      sendTest: flags['send-test'] === true,
      plan: flags.plan as string | undefined,
    })
    const ok = checks.every((c) => c.ok)
    io.stdout(flags.json ? JSON.stringify({ ok, checks }, null, 2) : renderChecks(checks))
    return ok ? 0 : 1
  },
}

export default doctor
