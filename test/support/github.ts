import { readFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { CapturedRequest } from './servers.ts'

/** One exchange a fake GitHub server answered, kept to check it against GitHub's OpenAPI description. */
export interface GitHubExchange {
  method: string
  path: string
  requestBody: unknown
  status: number
  responseBody: unknown
}

type Schema = {
  $ref?: string
  type?: string
  nullable?: boolean
  enum?: unknown[]
  properties?: Record<string, Schema>
  items?: Schema
  additionalProperties?: boolean | Schema
  anyOf?: Schema[]
  oneOf?: Schema[]
  allOf?: Schema[]
}
type Operation = {
  requestBody?: { content?: Record<string, { schema?: Schema }> }
  responses: Record<string, { content?: Record<string, { schema?: Schema }> }>
}
type Spec = { paths: Record<string, Record<string, Operation>>; components: Record<string, Record<string, Schema>> }

let spec: Spec | undefined
/** GitHub's REST API description for api.github.com, from npm @octokit/openapi (loaded once). */
function githubSpec(): Spec {
  const file = createRequire(import.meta.url).resolve('@octokit/openapi/generated/api.github.com.json')
  spec ??= JSON.parse(readFileSync(file, 'utf8')) as Spec
  return spec
}

function resolve(schema: Schema): Schema {
  let s = schema
  while (s.$ref) {
    const [, , group, name] = s.$ref.split('/') as [string, string, string, string]
    s = githubSpec().components[group]![name]!
  }
  return s
}

/**
 * The problems of `value` against `schema`, for what the value carries: every field present must be declared, with
 * the declared type (and enum value); fields the schema has but the value leaves out are not required, since a fake
 * answers only with what the client reads.
 */
function problems(value: unknown, schema: Schema, at: string): string[] {
  const s = resolve(schema)
  if (value === null) return s.nullable ? [] : [`${at}: null where the schema does not allow it`]
  for (const options of [s.anyOf, s.oneOf]) {
    if (options) return options.some((o) => problems(value, o, at).length === 0) ? [] : [`${at}: matches no variant`]
  }
  if (s.allOf) return s.allOf.flatMap((o) => problems(value, o, at))
  if (s.enum && !s.enum.includes(value)) return [`${at}: ${JSON.stringify(value)} is not one of ${s.enum.join(', ')}`]
  const type = Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value
  if (s.type && s.type !== type && !(s.type === 'number' && type === 'integer'))
    return [`${at}: ${type} where the schema says ${s.type}`]
  if (type === 'array') return (value as unknown[]).flatMap((v, i) => problems(v, s.items ?? {}, `${at}[${i}]`))
  if (type === 'object' && s.properties) {
    return Object.entries(value as Record<string, unknown>).flatMap(([key, v]) => {
      const declared = s.properties![key]
      if (declared) return problems(v, declared, `${at}.${key}`)
      return s.additionalProperties ? [] : [`${at}.${key}: not in the schema`]
    })
  }
  return []
}

/** The templated path and operation of GitHub's API that a concrete request matches, if any. */
function operationOf(method: string, path: string): { template: string; operation: Operation } | undefined {
  for (const [template, operations] of Object.entries(githubSpec().paths)) {
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`)
    const operation = operations[method.toLowerCase()]
    if (operation && pattern.test(path)) return { template, operation }
  }
  return undefined
}

/**
 * Checks exchanges against GitHub's OpenAPI description: each method and path is an operation, each success status is
 * one it documents, and the JSON bodies sent and answered carry only declared fields of the declared types. Returns the
 * problems (empty when all match) and the operations seen.
 */
export function checkAgainstOpenApi(exchanges: readonly GitHubExchange[]): {
  problems: string[]
  operations: string[]
} {
  const found: string[] = []
  const operations = new Set<string>()
  for (const x of exchanges) {
    const where = `${x.method} ${x.path}`
    const match = operationOf(x.method, x.path)
    if (!match) {
      found.push(`${where}: no such operation in GitHub's API`)
      continue
    }
    operations.add(`${x.method} ${match.template}`)
    const requestSchema = match.operation.requestBody?.content?.['application/json']?.schema
    if (x.requestBody !== undefined) {
      if (!requestSchema) found.push(`${where}: the operation takes no JSON body`)
      else found.push(...problems(x.requestBody, requestSchema, `${where} request`))
    }
    if (x.status >= 300) continue
    const response = match.operation.responses[String(x.status)]
    if (!response) {
      found.push(`${where}: GitHub does not answer ${x.status} (documented: ${Object.keys(match.operation.responses)})`)
      continue
    }
    const responseSchema = response.content?.['application/json']?.schema
    if (x.responseBody !== undefined) {
      if (!responseSchema) found.push(`${where}: ${x.status} has no JSON body in GitHub's API`)
      else found.push(...problems(x.responseBody, responseSchema, `${where} ${x.status}`))
    }
  }
  return { problems: found, operations: [...operations].sort() }
}

/** Answers `res` as GitHub would (JSON, optional headers) and records the exchange in `log`. */
export function answer(
  log: GitHubExchange[],
  req: CapturedRequest,
  res: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): void {
  log.push({
    method: req.method,
    path: new URL(req.url, 'http://x').pathname,
    requestBody: req.body ? req.json() : undefined,
    status,
    responseBody: body,
  })
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers })
  res.end(body === undefined ? '' : JSON.stringify(body))
}
