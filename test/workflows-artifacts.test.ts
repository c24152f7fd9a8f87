import { describe, expect, test } from 'vitest'
import { parse } from 'yaml'
import { stepRuns } from './support/expressions.ts'
import { allSteps, loadWorkflows, type Step, type WorkflowFile } from './support/workflows.ts'

// What leaves a runner, and what a runner's process list shows: artifacts are kept no longer than GitHub keeps them,
// dumps and audit archives leave only encrypted, a backup run that dumped nothing uploads nothing (and so neither fails
// its workflow nor starts a retry), and no secret is put on a command line.

const workflows = loadWorkflows()
const encryptAction = './.github/actions/encrypt-artifact'
/** The most days GitHub keeps an artifact in a public repository, and the default maximum of a private one. */
const maxRetentionDays = 90

const uploads = (doc: Record<string, any>) =>
  allSteps(doc).filter((s) => s.uses?.startsWith('actions/upload-artifact@'))

// ---- the checks, as functions so that each one is also shown to catch a bad workflow ----

/** Upload steps without a retention-days, or with one above what GitHub keeps (it cuts longer ones silently). */
function retentionProblems(doc: Record<string, any>): string[] {
  return uploads(doc)
    .filter((s) => {
      const days = s.with?.['retention-days']
      return typeof days !== 'number' || days < 1 || days > maxRetentionDays
    })
    .map((s) => `${s.name ?? s.uses}: retention-days ${String(s.with?.['retention-days'] ?? 'missing')}`)
}

/** Names set from `secrets.*` in an env: block. */
function secretNames(env: Record<string, unknown> | undefined): string[] {
  return Object.entries(env ?? {})
    .filter(([, v]) => /\bsecrets\./.test(String(v)))
    .map(([k]) => k)
}

/**
 * `run:` scripts that expand a variable holding a secret (`psql "$DATABASE_URL"`): the expanded value is an argument
 * of some process, and every process on the runner can read another's arguments. A program must read it from its
 * environment instead. Also flags a postgres:// URL written into a script.
 */
function secretsOnCommandLines(doc: Record<string, any>): string[] {
  const problems: string[] = []
  for (const job of Object.values<any>(doc.jobs ?? {})) {
    const inherited = [...secretNames(doc.env), ...secretNames(job?.env)]
    for (const step of (job?.steps ?? []) as Step[]) {
      if (typeof step.run !== 'string') continue
      for (const name of [...inherited, ...secretNames(step.env)]) {
        if (new RegExp(`\\$\\{?${name}\\b`).test(step.run)) problems.push(`${step.name ?? 'a run step'}: $${name}`)
      }
      if (/postgres(ql)?:\/\//.test(step.run)) problems.push(`${step.name ?? 'a run step'}: a postgres:// URL`)
    }
  }
  return problems
}

/**
 * Upload steps whose files are not the output of an encrypt-artifact step that takes its key from
 * secrets.ARTIFACT_AGE_RECIPIENTS, or that run even when that step encrypted nothing.
 */
function unencryptedUploads(doc: Record<string, any>): string[] {
  const steps = allSteps(doc)
  return uploads(doc).flatMap((upload) => {
    const encrypt = steps.find(
      (s) =>
        s.uses === encryptAction &&
        String(s.with?.output ?? '').trim() === String(upload.with?.path ?? '').trim() &&
        /^\$\{\{\s*secrets\.ARTIFACT_AGE_RECIPIENTS\s*\}\}$/.test(String(s.env?.ARTIFACT_AGE_RECIPIENTS ?? '')),
    )
    const id = (encrypt as (Step & { id?: string }) | undefined)?.id
    if (!encrypt || !id) return [`${upload.name}: uploads files no encrypt-artifact step wrote`]
    const gate = new RegExp(`steps\\.${id}\\.outputs\\.encrypted\\s*==\\s*'true'`)
    return gate.test(upload.if ?? '') ? [] : [`${upload.name}: runs without steps.${id}.outputs.encrypted == 'true'`]
  })
}

const byJob = (job: string) => workflows.find((w) => w.job === job) as WorkflowFile

// ---- every workflow ----

describe.each(workflows.map((w) => [w.file, w] as const))('%s', (_file, w) => {
  test(`keeps every artifact at most ${maxRetentionDays} days, as GitHub does`, () => {
    expect(retentionProblems(w.doc)).toEqual([])
  })

  test('puts no secret on a command line', () => {
    expect(secretsOnCommandLines(w.doc)).toEqual([])
  })
})

describe.each(['backups/database', 'cleanup/audit-logs'])('the workflow of %s', (job) => {
  test('uploads only files encrypted to secrets.ARTIFACT_AGE_RECIPIENTS, and nothing without a key', () => {
    const w = byJob(job)
    expect(uploads(w.doc).length).toBeGreaterThan(0)
    expect(unencryptedUploads(w.doc)).toEqual([])
  })
})

// ---- what the backup workflow does with each kind of run ----

describe('backups-database.yml after each kind of run', () => {
  const steps = allSteps(byJob('backups/database').doc) as (Step & { id?: string })[]
  const run = steps.find((s) => s.run?.includes('scripts/backups/database.ts'))!
  const encrypt = steps.find((s) => s.uses === encryptAction)!
  const upload = uploads(byJob('backups/database').doc)[0]!
  // The runner's step outputs (sdk/src/runtime/hooks/summary.ts): `status` and `stats` for a run that ran; none for
  // one that was skipped (another run holds the lock, or the job is paused).
  const stepsAfter = (
    outputs: Record<string, string>,
    encrypted?: string,
    status: 'success' | 'failure' = 'success',
  ) => {
    const contexts = {
      steps: { [run.id!]: { outputs }, [encrypt.id!]: { outputs: encrypted ? { encrypted } : {} } },
      env: { BACKUP_DIR: '/w/backups-out' },
      inputs: {},
    }
    return { encrypts: stepRuns(encrypt.if, contexts, status), uploads: stepRuns(upload.if, contexts, status) }
  }
  const dumped = { status: 'succeeded', stats: JSON.stringify({ file: 'admin-20261128T024100Z.dump', sha256: 'ab12' }) }

  test('a run that wrote a dump encrypts it and uploads it when there is a key', () => {
    expect(stepsAfter(dumped, 'true')).toEqual({ encrypts: true, uploads: true })
    expect(stepsAfter(dumped, 'false')).toEqual({ encrypts: true, uploads: false })
  })

  test('a lock-skipped or paused run (no outputs), a dry run (no sha256) and a failed run upload nothing', () => {
    expect(stepsAfter({})).toEqual({ encrypts: false, uploads: false })
    const dry = { status: 'succeeded', stats: JSON.stringify({ file: 'admin-20261128T024100Z.dump', wouldPrune: 0 }) }
    expect(stepsAfter(dry)).toEqual({ encrypts: false, uploads: false })
    expect(stepsAfter({ status: 'failed', stats: '{}' }, undefined, 'failure')).toEqual({
      encrypts: false,
      uploads: false,
    })
  })

  test('encrypts exactly the files the run names, never a glob over BACKUP_DIR', () => {
    expect(run.id).toBeDefined()
    const paths = String(encrypt.with?.path).trim().split('\n')
    expect(paths).toEqual([
      `\${{ env.BACKUP_DIR }}/\${{ fromJSON(steps.${run.id}.outputs.stats).file }}`,
      `\${{ env.BACKUP_DIR }}/\${{ fromJSON(steps.${run.id}.outputs.stats).file }}.sha256`,
    ])
    expect(upload.with?.['if-no-files-found']).toBe('error')
  })
})

// ---- the checks catch what they claim to catch ----

describe('the checks themselves', () => {
  const old = parse(`name: backups/database
on: workflow_dispatch
jobs:
  run:
    runs-on: ubuntu-latest
    env:
      BACKUP_DIR: /tmp/out
    steps:
      - name: Install a matching PostgreSQL client
        run: server="$(psql "$DATABASE_URL" -XtAc 'select 1')"
        env:
          DATABASE_URL: \${{ secrets.DATABASE_URL }}
      - name: Dump by hand
        run: pg_dump --dbname=\${VERIFY_URL} > x.dump && pg_dump postgres://u:p@h/d > y.dump
        env:
          VERIFY_URL: \${{ secrets.BACKUP_VERIFY_DATABASE_URL }}
      - name: Upload the dump
        if: success()
        uses: actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02 # v4.6.2
        with:
          name: backup
          path: \${{ env.BACKUP_DIR }}/*.dump
          if-no-files-found: error
          retention-days: 400
`)

  test('flag a secret expanded into a command line, in both spellings, and a URL written into a script', () => {
    expect(secretsOnCommandLines(old)).toEqual([
      'Install a matching PostgreSQL client: $DATABASE_URL',
      'Dump by hand: $VERIFY_URL',
      'Dump by hand: a postgres:// URL',
    ])
  })

  test('flag a retention GitHub would cut, and a missing one', () => {
    expect(retentionProblems(old)).toEqual(['Upload the dump: retention-days 400'])
    const missing = structuredClone(old)
    delete missing.jobs.run.steps[2].with['retention-days']
    expect(retentionProblems(missing)).toEqual(['Upload the dump: retention-days missing'])
  })

  test('flag an upload of plaintext, and one not gated on the encryption', () => {
    expect(unencryptedUploads(old)).toEqual(['Upload the dump: uploads files no encrypt-artifact step wrote'])
    const x = (expression: string) => `\${{ ${expression} }}`
    const ungated = structuredClone(old)
    ungated.jobs.run.steps.splice(2, 0, {
      id: 'encrypt',
      uses: encryptAction,
      env: { ARTIFACT_AGE_RECIPIENTS: x('secrets.ARTIFACT_AGE_RECIPIENTS') },
      with: { path: x('env.BACKUP_DIR'), output: `${x('runner.temp')}/a` },
    })
    ungated.jobs.run.steps[3].with.path = `${x('runner.temp')}/a`
    expect(unencryptedUploads(ungated)).toEqual([
      "Upload the dump: runs without steps.encrypt.outputs.encrypted == 'true'",
    ])
  })

  test('tell by GitHub’s rules that the old upload step fails a skipped run', () => {
    // `if: success()` after a skipped run: the step runs, finds no dump, and `if-no-files-found: error` fails it.
    expect(stepRuns(old.jobs.run.steps[2].if, { steps: {} })).toBe(true)
    expect(() =>
      stepRuns('fromJSON(steps.backup.outputs.stats).sha256', { steps: { backup: { outputs: {} } } }),
    ).toThrow()
  })
})
