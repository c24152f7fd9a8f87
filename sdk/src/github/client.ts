import { retry } from '../runtime/retry.ts'

/** A workflow as GitHub's REST API lists it (`GET /repos/{owner}/{repo}/actions/workflows`). */
export interface GitHubWorkflow {
  id: number
  name: string
  /** `.github/workflows/<file>.yml` */
  path: string
  state: 'active' | 'deleted' | 'disabled_fork' | 'disabled_inactivity' | 'disabled_manually' | (string & {})
}

/** The few Actions endpoints the watchdog and retry jobs use. */
export interface GitHubClient {
  /** Any request under the API URL; JSON in and out; throws an Error with `status` on a non-2xx answer. */
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>
  /** Every workflow of the repository (all pages). */
  listWorkflows(): Promise<GitHubWorkflow[]>
  /** The repository's default branch (the ref catch-up dispatches run on). */
  defaultBranch(): Promise<string>
  enableWorkflow(id: number | string): Promise<void>
  dispatchWorkflow(id: number | string, ref: string, inputs?: Record<string, string>): Promise<void>
}

/** Options of createGitHubClient; `apiUrl` defaults to https://api.github.com, requests time out after 15s. */
export interface GitHubClientOptions {
  token: string
  repository: string
  apiUrl?: string
  timeoutMs?: number
  /** Attempts for transient failures (network, 429, 5xx); default 3. */
  attempts?: number
}

/** Creates a small REST client on fetch, authenticated with the token, retrying transient failures. */
export function createGitHubClient(options: GitHubClientOptions): GitHubClient {
  const apiUrl = (options.apiUrl ?? 'https://api.github.com').replace(/\/$/, '')
  const repo = `/repos/${options.repository}`

  const once = async (method: string, url: string, body?: unknown) => {
    let response: Response
    try {
      response = await fetch(url, {
        method,
        headers: {
          accept: 'application/vnd.github+json',
          authorization: `Bearer ${options.token}`,
          'x-github-api-version': '2022-11-28',
          'user-agent': 'admin-jobs',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
      })
    } catch (err) {
      throw new Error(`GitHub API ${method} ${url.slice(apiUrl.length)} failed`, { cause: err })
    }
    if (!response.ok) {
      const text = await response.text().catch(() => '')
      const detail = safeMessage(text)
      throw Object.assign(
        new Error(`GitHub API ${method} ${url.slice(apiUrl.length)} answered ${response.status}${detail}`),
        { status: response.status },
      )
    }
    return response
  }

  const send = (method: string, url: string, body?: unknown) =>
    retry({ attempts: options.attempts ?? 3, minDelay: '500ms', maxDelay: '5s' }, () => once(method, url, body))

  const client: GitHubClient = {
    async request<T>(method: string, path: string, body?: unknown) {
      const response = await send(method, `${apiUrl}${path}`, body)
      const text = await response.text()
      return (text ? JSON.parse(text) : undefined) as T
    },
    async listWorkflows() {
      const workflows: GitHubWorkflow[] = []
      let url: string | undefined = `${apiUrl}${repo}/actions/workflows?per_page=100`
      while (url) {
        const response: Response = await send('GET', url)
        const page = (await response.json()) as { workflows?: GitHubWorkflow[] }
        workflows.push(...(page.workflows ?? []))
        url = nextLink(response.headers.get('link'))
      }
      return workflows
    },
    async defaultBranch() {
      const repository = await client.request<{ default_branch?: string }>('GET', repo)
      return repository.default_branch ?? 'main'
    },
    async enableWorkflow(id) {
      await client.request('PUT', `${repo}/actions/workflows/${encodeURIComponent(String(id))}/enable`)
    },
    async dispatchWorkflow(id, ref, inputs) {
      await client.request('POST', `${repo}/actions/workflows/${encodeURIComponent(String(id))}/dispatches`, {
        ref,
        ...(inputs ? { inputs } : {}),
      })
    },
  }
  return client
}

/** The `rel="next"` URL of a Link header, if any. */
export function nextLink(link: string | null): string | undefined {
  if (!link) return undefined
  for (const part of link.split(',')) {
    const match = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part)
    if (match) return match[1]
  }
  return undefined
}

function safeMessage(text: string): string {
  try {
    const message = (JSON.parse(text) as { message?: unknown }).message
    return typeof message === 'string' ? `: ${message.slice(0, 200)}` : ''
  } catch {
    return ''
  }
}
