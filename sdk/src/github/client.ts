import type { Octokit } from '@octokit/rest'
import type { Logger } from '../runtime/log.ts'

/** A workflow as GitHub's REST API lists it (`GET /repos/{owner}/{repo}/actions/workflows`). */
export interface GitHubWorkflow {
  id: number
  name: string
  /** `.github/workflows/<file>.yml` */
  path: string
  state: 'active' | 'deleted' | 'disabled_fork' | 'disabled_inactivity' | 'disabled_manually' | (string & {})
}

/** A workflow run as GitHub lists it (`GET /repos/{owner}/{repo}/actions/workflows/{id}/runs`). */
export interface GitHubWorkflowRun {
  id: number
  /** `schedule`, `workflow_dispatch`, `push`, … */
  event: string
  status: string | null
  conclusion: string | null
  created_at: string
  run_started_at?: string
  html_url: string
}

/** The repository as the watchdog and the doctor read it (`GET /repos/{owner}/{repo}`). */
export interface GitHubRepository {
  defaultBranch: string
  /** `public`, `private` or `internal`: only public repositories have their schedules disabled for inactivity. */
  visibility: string
  /** A classic token's scopes (`x-oauth-scopes`); undefined for fine-grained, app and Actions tokens, which have none. */
  scopes: string[] | undefined
}

/** The Actions endpoints the platform uses (watchdog, retry, dispatch, doctor), on one repository. */
export interface GitHubClient {
  /** Every workflow of the repository (all pages). */
  listWorkflows(): Promise<GitHubWorkflow[]>
  /** The newest runs of one workflow, newest first (one page of at most `perPage`, default 30). */
  listWorkflowRuns(id: number | string, options?: { perPage?: number }): Promise<GitHubWorkflowRun[]>
  /** The repository's default branch (the ref catch-up dispatches run on). */
  defaultBranch(): Promise<string>
  /** The repository's default branch, visibility and (classic tokens) the token's scopes. */
  repository(): Promise<GitHubRepository>
  enableWorkflow(id: number | string): Promise<void>
  dispatchWorkflow(id: number | string, ref: string, inputs?: Record<string, string>): Promise<void>
  /** Re-runs the failed jobs of a workflow run (a new attempt of the same run). */
  rerunFailedJobs(runId: number | string): Promise<void>
  /** Any other endpoint, through the same client: `request('GET /repos/{owner}/{repo}/actions/runs', {})`. */
  request<T = unknown>(route: string, parameters?: Record<string, unknown>): Promise<T>
}

/**
 * Options of createGitHubClient. Defaults: https://api.github.com, 15s per request, 3 retries of network errors and
 * 5xx (1s, 4s, 9s apart), and rate limits waited out when GitHub asks for at most 60s (`retry-after`, or the
 * `x-ratelimit-reset` of an exhausted quota), twice at most.
 */
export interface GitHubClientOptions {
  token: string
  /** `owner/name` */
  repository: string
  apiUrl?: string
  timeoutMs?: number
  /** Retries of network errors and 5xx answers (default 3). */
  retries?: number
  /** The longest rate-limit wait the client sits out before failing instead (default 60s). */
  maxRateLimitWaitMs?: number
  /** Aborts waits and requests (a job passes its signal). */
  signal?: AbortSignal
  /** Where rate-limit waits are reported. */
  log?: Pick<Logger, 'warn'>
  /**
   * Space mutating requests a second apart and wait out rate limits, as GitHub asks of integrations (default true);
   * false only against a local server that plays GitHub.
   */
  paceWrites?: boolean
}

const apiVersion = '2022-11-28'

/**
 * Creates the GitHub client: @octokit/rest with plugin-retry (network errors, 5xx) and plugin-throttling (primary and
 * secondary rate limits, honouring `retry-after` and `x-ratelimit-reset`). Octokit is loaded on the first request, so a
 * job that never talks to GitHub does not pay for it at start-up. A refused request throws an Error with `status` and
 * GitHub's message: `GitHub API PUT /repos/o/r/actions/workflows/7/enable answered 404: Not Found`.
 */
export function createGitHubClient(options: GitHubClientOptions): GitHubClient {
  const [owner, repo] = options.repository.split('/') as [string, string]
  let octokit: Promise<Octokit> | undefined
  const api = () => {
    octokit ??= buildOctokit(options)
    return octokit
  }
  const call = async <T>(fn: (o: Octokit) => Promise<T>): Promise<T> => {
    const o = await api()
    try {
      return await fn(o)
    } catch (err) {
      throw describeFailure(err)
    }
  }
  return {
    listWorkflows: () =>
      call((o) => o.paginate(o.rest.actions.listRepoWorkflows, { owner, repo, per_page: 100 })) as Promise<
        GitHubWorkflow[]
      >,
    listWorkflowRuns: (id, runOptions) =>
      call(
        async (o) =>
          (
            await o.rest.actions.listWorkflowRuns({
              owner,
              repo,
              workflow_id: id,
              per_page: runOptions?.perPage ?? 30,
            })
          ).data.workflow_runs as GitHubWorkflowRun[],
      ),
    defaultBranch: () => call(async (o) => (await o.rest.repos.get({ owner, repo })).data.default_branch ?? 'main'),
    repository: () =>
      call(async (o) => {
        const { data, headers } = await o.rest.repos.get({ owner, repo })
        const scopes = headers['x-oauth-scopes']
        return {
          defaultBranch: data.default_branch ?? 'main',
          visibility: data.visibility ?? (data.private ? 'private' : 'public'),
          scopes:
            typeof scopes === 'string'
              ? scopes
                  .split(',')
                  .map((x) => x.trim())
                  .filter(Boolean)
              : undefined,
        }
      }),
    async enableWorkflow(id) {
      await call((o) => o.rest.actions.enableWorkflow({ owner, repo, workflow_id: id }))
    },
    async dispatchWorkflow(id, ref, inputs) {
      await call((o) => o.rest.actions.createWorkflowDispatch({ owner, repo, workflow_id: id, ref, inputs }))
    },
    async rerunFailedJobs(runId) {
      await call((o) => o.rest.actions.reRunWorkflowFailedJobs({ owner, repo, run_id: Number(runId) }))
    },
    request: <T>(route: string, parameters: Record<string, unknown> = {}) =>
      call(async (o) => (await o.request(route, { owner, repo, ...parameters })).data as T),
  }
}

async function buildOctokit(options: GitHubClientOptions): Promise<Octokit> {
  const [{ Octokit }, { retry }, { throttling }] = await Promise.all([
    import('@octokit/rest'),
    import('@octokit/plugin-retry'),
    import('@octokit/plugin-throttling'),
  ])
  const maxWaitSeconds = (options.maxRateLimitWaitMs ?? 60_000) / 1000
  const timeoutMs = options.timeoutMs ?? 15_000
  const waitOut =
    (kind: string) => (retryAfter: number, request: { method: string; url: string }, _o: unknown, count: number) => {
      if (count >= 2 || retryAfter > maxWaitSeconds || options.signal?.aborted) return false
      options.log?.warn(`GitHub ${kind}: retrying in ${retryAfter}s`, { request: `${request.method} ${request.url}` })
      return true
    }
  const GitHub = Octokit.plugin(retry, throttling)
  const octokit = new GitHub({
    baseUrl: (options.apiUrl ?? 'https://api.github.com').replace(/\/+$/, ''),
    userAgent: 'admin-jobs',
    retry: { retries: options.retries ?? 3 },
    throttle: {
      enabled: options.paceWrites !== false,
      onRateLimit: waitOut('rate limit'),
      onSecondaryRateLimit: waitOut('secondary rate limit'),
    },
    request: {
      // Each attempt gets its own timeout; the caller's signal aborts every one.
      fetch: (url: string, init: RequestInit) => {
        const timeout = AbortSignal.timeout(timeoutMs)
        const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout
        return fetch(url, { ...init, signal })
      },
    },
    log: { debug: () => {}, info: () => {}, warn: (m: string) => options.log?.warn(m), error: () => {} },
  })
  octokit.hook.before('request', (request) => {
    request.headers.authorization = `Bearer ${options.token}`
    request.headers['x-github-api-version'] = apiVersion
  })
  return octokit
}

/** Octokit's RequestError as one line: method, path, status and GitHub's own message; `status` kept for callers. */
function describeFailure(err: unknown): Error {
  const e = err as {
    status?: number
    request?: { method?: string; url?: string }
    response?: { data?: unknown }
    message?: string
  }
  if (!e?.request) return err as Error
  const where = `${e.request.method} ${pathOf(e.request.url ?? '')}`
  const message = (e.response?.data as { message?: unknown } | undefined)?.message
  if (!e.response)
    return Object.assign(new Error(`GitHub API ${where} failed: ${e.message}`, { cause: err }), { status: e.status })
  const detail = typeof message === 'string' ? `: ${message.slice(0, 200)}` : ''
  return Object.assign(new Error(`GitHub API ${where} answered ${e.status}${detail}`, { cause: err }), {
    status: e.status,
  })
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname
  } catch {
    return url
  }
}
