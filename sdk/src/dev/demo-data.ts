import { createRandom, type Random } from './random.ts'

const day = 86_400_000
const hour = 3_600_000
const minute = 60_000
const historyDays = 120
// Expiries that fall in the 1-, 7- and 30-day notice windows, so the notification jobs always have work.
const soon = [0.5 * day, 3 * day, 6 * day, 13 * day, 25 * day, 29 * day]

const firstNames = [
  'ada',
  'alan',
  'grace',
  'linus',
  'margaret',
  'ken',
  'barbara',
  'dennis',
  'frances',
  'edsger',
].concat(['radia', 'john', 'katherine', 'tim', 'hedy', 'donald', 'sophie', 'niklaus', 'joan', 'guido'])
const lastNames = ['lovelace', 'turing', 'hopper', 'torvalds', 'hamilton', 'thompson', 'liskov', 'ritchie'].concat([
  'allen',
  'dijkstra',
  'perlman',
  'mccarthy',
  'johnson',
  'lee',
  'lamarr',
  'knuth',
  'wilson',
  'wirth',
])
const domains = ['acme.example', 'globex.example', 'initech.example', 'umbrella.example', 'hooli.example']
const userAgents = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
  'Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
]
const attackerAgents = ['python-requests/2.32.3', 'curl/8.10.1', 'Go-http-client/1.1']
const attackerIps = ['185.220.101.34', '45.155.205.233', '193.42.33.7', '91.240.118.172']
const customers = ['Acme Corp', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Stark Industries', 'Wayne Enterprises']
  .concat(['Tyrell', 'Cyberdyne', 'Soylent', 'Wonka', 'Vandelay Industries', 'Pied Piper', 'Aperture Science'])
  .concat(['Black Mesa', 'Oscorp', 'Massive Dynamic', 'Gringotts', 'Monsters Inc', 'Dunder Mifflin'])
const products = ['Admin Suite', 'Audit Vault', 'SSO Connector', 'Reporting Pro']
const plans = ['starter', 'team', 'business', 'enterprise']

/** A demo user with the traits that shape its activity. */
interface User {
  id: number
  email: string
  role: 'user' | 'admin' | 'owner'
  mfa: boolean
  createdAt: number
  disabledAt: number | null
  lastLoginAt: number | null
  weight: number
  ips: string[]
  agents: string[]
}

/** Collects rows column by column, ready for `unnest`. */
export function table<K extends string>(names: readonly K[]) {
  const columns = Object.fromEntries(names.map((n) => [n, [] as any[]])) as Record<K, any[]>
  return {
    columns,
    get length() {
      return columns[names[0]!].length
    },
    push(row: Record<K, unknown>) {
      for (const n of names) {
        // Scalars travel as text and the query casts them (text[]::bool[] for booleans): postgres.js would otherwise type
        // a whole array by its first element.
        const value = row[n] ?? null
        columns[n].push(typeof value === 'number' || typeof value === 'boolean' ? String(value) : value)
      }
    },
  }
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

/** The generated rows of every admin table, column by column. */
export type DemoData = ReturnType<typeof generateDemoData>

/** A collected table: its columns, ready for `unnest`, and its row count. */
export type Table<K extends string = string> = ReturnType<typeof table<K>>

/** What every generator shares: the random stream, the clock, the users and the audit events collected so far. */
interface World {
  rnd: Random
  now: number
  start: number
  users: User[]
  admins: User[]
  within(from: number, to: number): number
  ip(): string
  weightedUser(): User
  activeSpan(u: User): [number, number]
  officeHours(t: number, from?: number, to?: number): number
  event(at: number, row: Record<string, unknown>): void
}

/**
 * Generates the demo data, deterministic for `seed` and `now`: users (owners, admins, some without MFA), ~100
 * sessions per user, tokens and audit events over 120 days, credentials, licenses and subscriptions.
 */
export function generateDemoData(options: { seed: number; now: number; users: number }) {
  const { now } = options
  const rnd = createRandom(options.seed)
  const start = now - historyDays * day
  const within = (from: number, to: number) => from + Math.floor(rnd.next() * Math.max(0, to - from))
  const ip = () =>
    `${rnd.pick([24, 62, 81, 98, 109, 151, 176, 203])}.${rnd.int(0, 255)}.${rnd.int(0, 255)}.${rnd.int(1, 254)}`
  const users = makeUsers(rnd, { now, start, count: options.users, within, ip })
  const cumulative: number[] = []
  let total = 0
  for (const u of users) {
    total += u.weight
    cumulative.push(total)
  }
  const events: { at: number; row: Record<string, unknown> }[] = []
  const world: World = {
    rnd,
    now,
    start,
    users,
    admins: users.filter((u) => u.role !== 'user'),
    within,
    ip,
    weightedUser() {
      const x = rnd.next() * total
      let lo = 0
      let hi = cumulative.length - 1
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (cumulative[mid]! < x) lo = mid + 1
        else hi = mid
      }
      return users[lo]!
    },
    activeSpan: (u) => [Math.max(start, u.createdAt), u.disabledAt ?? now],
    // Most activity happens in office hours (UTC).
    officeHours(t, from = start, to = now) {
      const moved = rnd.chance(0.7) ? t - (t % day) + rnd.int(8, 18) * hour + rnd.int(0, 59) * minute : t
      return Math.min(Math.max(moved, from), to)
    },
    event: (at, row) => void events.push({ at, row: { ...row, occurred_at: iso(at) } }),
  }
  const { sessions, tokens } = makeSessions(world)
  makeShortLivedTokens(world, tokens)
  makeFailedLogins(world)
  makeAdministration(world)
  const credentials = makeCredentials(world)
  const { licenses, subscriptions } = makeBilling(world)

  events.sort((a, b) => a.at - b.at)
  const audit = table(['occurred_at', 'actor_id', 'action', 'target_type', 'target_id', 'ip', 'user_agent', 'metadata'])
  for (const e of events) audit.push(e.row as never)
  const userRows = table(['id', 'email', 'role', 'mfa_enabled', 'created_at', 'last_login_at', 'disabled_at'])
  for (const u of users)
    userRows.push({
      id: u.id,
      email: u.email,
      role: u.role,
      mfa_enabled: u.mfa,
      created_at: iso(u.createdAt),
      last_login_at: iso(u.lastLoginAt),
      disabled_at: iso(u.disabledAt),
    })

  return { users: userRows, sessions, tokens, audit_logs: audit, credentials, licenses, subscriptions }
}

/** Two owners (one without MFA), ~5% admins, a quarter of the users created inside the history window. */
function makeUsers(
  rnd: Random,
  w: { now: number; start: number; count: number; within: World['within']; ip: World['ip'] },
): User[] {
  const { now, start, within, ip } = w
  const users: User[] = []
  const emails = new Set<string>()
  for (let id = 1; id <= w.count; id++) {
    const role = id <= 2 ? 'owner' : rnd.chance(0.05) ? 'admin' : 'user'
    let email = `${rnd.pick(firstNames)}.${rnd.pick(lastNames)}@${rnd.pick(domains)}`
    if (emails.has(email)) email = email.replace('@', `${id}@`)
    emails.add(email)
    const createdAt = role === 'user' && rnd.chance(0.25) ? within(start, now - day) : within(now - 700 * day, start)
    users.push({
      id,
      email,
      role,
      mfa: id === 1 || (id > 2 && rnd.chance(role === 'admin' ? 0.75 : 0.35)),
      createdAt,
      disabledAt: role === 'user' && rnd.chance(0.04) ? within(Math.max(createdAt, start), now) : null,
      lastLoginAt: null,
      weight: 1 / (rnd.next() + 0.05),
      ips: Array.from({ length: rnd.int(1, 3) }, ip),
      agents: Array.from({ length: rnd.int(1, 2) }, () => rnd.pick(userAgents)),
    })
  }
  return users
}

/** Sessions of weighted users, their login/logout events and refresh tokens. */
function makeSessions(world: World) {
  const { rnd, now, users, within, ip, weightedUser, activeSpan, officeHours, event } = world
  const sessions = table([
    'id',
    'user_id',
    'created_at',
    'last_seen_at',
    'expires_at',
    'revoked_at',
    'ip',
    'user_agent',
  ])
  const tokens = table(['id', 'user_id', 'kind', 'token_hash', 'created_at', 'expires_at', 'revoked_at', 'used_at'])
  for (let i = 0; i < users.length * 100; i++) {
    const u = weightedUser()
    const [from, to] = activeSpan(u)
    if (to - from < hour) continue
    const created = officeHours(within(from, to), from, to - minute)
    const ttl = rnd.chance(0.7) ? 14 * day : 30 * day
    const expires = created + ttl
    const lastSeen = created + Math.floor(rnd.next() * rnd.next() * (Math.min(expires, now) - created))
    const revoked = rnd.chance(0.12) ? within(created, Math.min(expires, now)) : null
    const sessionIp = rnd.chance(0.05) ? ip() : rnd.pick(u.ips)
    const agent = rnd.pick(u.agents)
    const id = rnd.uuid()
    sessions.push({
      id,
      user_id: u.id,
      created_at: iso(created),
      last_seen_at: iso(lastSeen),
      expires_at: iso(expires),
      revoked_at: iso(revoked),
      ip: sessionIp,
      user_agent: agent,
    })
    u.lastLoginAt = Math.max(u.lastLoginAt ?? 0, created)
    const who = { actor_id: u.id, target_type: 'user', target_id: String(u.id), ip: sessionIp, user_agent: agent }
    event(created, { ...who, action: 'auth.login', metadata: { session_id: id, mfa: u.mfa } })
    if (rnd.chance(0.4)) event(lastSeen, { ...who, action: 'auth.logout', metadata: { session_id: id } })
    if (rnd.chance(0.4)) {
      tokens.push({
        id: rnd.uuid(),
        user_id: u.id,
        kind: 'refresh',
        token_hash: rnd.hex(32),
        created_at: iso(created),
        expires_at: iso(created + 30 * day),
        revoked_at: iso(revoked),
        used_at: null,
      })
    }
  }
  return { sessions, tokens }
}

/** Password resets, email verifications and invites: short-lived, mostly used or expired. */
function makeShortLivedTokens(world: World, tokens: Table) {
  const { rnd, now, start, users, admins, within, weightedUser, officeHours } = world
  const shortTokens = [
    ['password_reset', users.length * 2, hour, 0.6],
    ['email_verification', users.length, day, 0.8],
    ['invite', users.length, 7 * day, 0.6],
  ] as const
  for (const [kind, count, ttl, usedShare] of shortTokens) {
    for (let i = 0; i < count; i++) {
      const u = kind === 'invite' ? rnd.pick(admins) : weightedUser()
      const created = officeHours(within(start, now))
      const used = rnd.chance(usedShare) ? Math.min(created + rnd.int(1, 50) * minute, now) : null
      tokens.push({
        id: rnd.uuid(),
        user_id: kind === 'invite' ? null : u.id,
        kind,
        token_hash: rnd.hex(32),
        created_at: iso(created),
        expires_at: iso(created + ttl),
        revoked_at: !used && rnd.chance(0.05) ? iso(created + minute) : null,
        used_at: iso(used),
      })
    }
  }
}

/**
 * Failed logins: typos by real users, unknown addresses, and credential-stuffing bursts from a few IPs (one of them
 * ending minutes before `now`, so the security alerts have something to find).
 */
function makeFailedLogins(world: World) {
  const { rnd, now, start, users, within, weightedUser, officeHours, event } = world
  for (let i = 0; i < users.length * 15; i++) {
    const u = weightedUser()
    const known = rnd.chance(0.8)
    event(officeHours(within(start, now)), {
      actor_id: null,
      action: 'auth.login_failed',
      target_type: 'user',
      target_id: known ? String(u.id) : null,
      ip: rnd.pick(u.ips),
      user_agent: rnd.pick(u.agents),
      metadata: {
        email: known ? u.email : `${rnd.pick(firstNames)}${rnd.int(1, 99)}@${rnd.pick(domains)}`,
        reason: known ? 'bad_password' : 'unknown_user',
      },
    })
  }
  for (let burst = 0; burst < 7; burst++) {
    const attempts = rnd.int(80, 400)
    const length = rnd.int(2, 20) * minute
    const begin = burst === 0 ? now - 3 * minute - length : within(start, now - day)
    const source = rnd.pick(attackerIps)
    const agent = rnd.pick(attackerAgents)
    for (let i = 0; i < attempts; i++) {
      const u = rnd.chance(0.6) ? rnd.pick(users) : undefined
      event(begin + Math.floor((i / attempts) * length), {
        actor_id: null,
        action: 'auth.login_failed',
        target_type: 'user',
        target_id: u ? String(u.id) : null,
        ip: source,
        user_agent: agent,
        metadata: {
          email: u?.email ?? `${rnd.pick(['admin', 'root', 'test', 'info', 'support'])}@${rnd.pick(domains)}`,
          reason: u ? 'bad_password' : 'unknown_user',
        },
      })
    }
  }
}

/** Account administration: users created, role changes, MFA disabled, deletions and data exports. */
function makeAdministration(world: World) {
  const { rnd, now, start, users, admins, within, weightedUser, activeSpan, officeHours, event } = world
  const by = () => {
    const a = rnd.pick(admins)
    return { actor_id: a.id, ip: rnd.pick(a.ips), user_agent: rnd.pick(a.agents) }
  }
  for (const u of users) {
    if (u.createdAt >= start)
      event(u.createdAt, {
        ...by(),
        action: 'user.created',
        target_type: 'user',
        target_id: String(u.id),
        metadata: { email: u.email, role: 'user' },
      })
    const [from, to] = activeSpan(u)
    if (u.role === 'admin' && rnd.chance(0.6))
      event(within(from, to), {
        ...by(),
        action: 'user.role_changed',
        target_type: 'user',
        target_id: String(u.id),
        metadata: { from: 'user', to: 'admin' },
      })
    if (u.role === 'user' && rnd.chance(0.03))
      event(within(from, to), {
        ...by(),
        action: 'user.role_changed',
        target_type: 'user',
        target_id: String(u.id),
        metadata: { from: 'admin', to: 'user' },
      })
    if (!u.mfa && rnd.chance(u.role === 'user' ? 0.08 : 0.5))
      event(within(from, to), {
        actor_id: u.id,
        action: 'auth.mfa_disabled',
        target_type: 'user',
        target_id: String(u.id),
        ip: rnd.pick(u.ips),
        user_agent: rnd.pick(u.agents),
        metadata: { method: 'totp' },
      })
  }
  for (let i = 0; i < 8; i++)
    event(within(start, now), {
      ...by(),
      action: 'user.deleted',
      target_type: 'user',
      target_id: String(users.length + 1 + i),
      metadata: { email: `former${i + 1}@${rnd.pick(domains)}` },
    })
  for (let i = 0; i < users.length; i++) {
    const u = rnd.chance(0.7) ? rnd.pick(admins) : weightedUser()
    const rows = rnd.chance(0.03) ? rnd.int(50_000, 500_000) : rnd.int(10, 5_000)
    event(officeHours(within(start, now)), {
      actor_id: u.id,
      action: 'data.export',
      target_type: 'table',
      target_id: rnd.pick(['users', 'audit_logs', 'licenses', 'subscriptions']),
      ip: rnd.pick(u.ips),
      user_agent: rnd.pick(u.agents),
      metadata: { rows, format: rnd.pick(['csv', 'json', 'xlsx']) },
    })
  }
}

/** Certificates, keys and secrets: some expired, some expiring in the notice windows, some revoked. */
function makeCredentials(world: World) {
  const { rnd, now, start, users, admins, within, weightedUser, event } = world
  const credentials = table(['id', 'owner_id', 'kind', 'name', 'created_at', 'expires_at', 'revoked_at'])
  const kinds = [
    'api_key',
    'api_key',
    'api_key',
    'tls_certificate',
    'oauth_client_secret',
    'ssh_key',
    'service_account_key',
  ]
  for (let id = 1; id <= Math.round(users.length * 1.3); id++) {
    const kind = rnd.pick(kinds)
    const owner = rnd.chance(0.5) ? rnd.pick(admins) : weightedUser()
    const created = within(now - 400 * day, now - day)
    const lifetimes: Record<string, readonly (number | null)[]> = {
      api_key: [null, 90, 180, 365],
      tls_certificate: [90, 365],
      oauth_client_secret: [365],
      ssh_key: [null, null, 365],
      service_account_key: [90],
    }
    const lifetime = rnd.pick(lifetimes[kind]!)
    const expires = id <= soon.length ? now + soon[id - 1]! : lifetime === null ? null : created + lifetime * day
    const name =
      kind === 'tls_certificate'
        ? `${rnd.pick(['api', 'admin', 'www', 'sso', 'status'])}.${rnd.pick(domains)}`
        : `${rnd.pick(['ci', 'grafana', 'backup', 'billing', 'crm', 'deploy', 'etl'])}-${kind.replace(/_/g, '-')}-${id}`
    credentials.push({
      id,
      owner_id: owner.id,
      kind,
      name,
      created_at: iso(created),
      expires_at: iso(expires),
      revoked_at: rnd.chance(0.08) ? iso(within(created, now)) : null,
    })
    if (kind === 'api_key' && created >= start)
      event(created, {
        actor_id: owner.id,
        action: 'api_key.created',
        target_type: 'credential',
        target_id: String(id),
        ip: rnd.pick(owner.ips),
        user_agent: rnd.pick(owner.agents),
        metadata: { name },
      })
  }

  return credentials
}

/** Licenses and subscriptions of customers, with a few inconsistencies for the billing job to find. */
function makeBilling(world: World) {
  const { rnd, now, within } = world
  const licenses = table(['id', 'customer', 'product', 'seats', 'seats_used', 'expires_at', 'status', 'contact_email'])
  const slug = (name: string) => name.toLowerCase().replace(/\W+/g, '-')
  for (let id = 1; id <= 60; id++) {
    const customer = rnd.pick(customers)
    const seats = rnd.pick([5, 10, 25, 50, 100, 250, 500])
    const expires = id <= soon.length ? now + soon[id - 1]! : within(now - 90 * day, now + 400 * day)
    const status = rnd.chance(0.05) ? 'suspended' : expires < now && !rnd.chance(0.1) ? 'expired' : 'active'
    licenses.push({
      id,
      customer,
      product: rnd.pick(products),
      seats,
      seats_used: Math.round(seats * (0.3 + rnd.next() * (rnd.chance(0.05) ? 0.9 : 0.7))),
      expires_at: iso(expires),
      status,
      contact_email: rnd.chance(0.9) ? `billing@${slug(customer)}.example` : null,
    })
  }
  const subscriptions = table([
    'id',
    'customer',
    'plan',
    'status',
    'current_period_end',
    'cancel_at_period_end',
    'contact_email',
  ])
  for (let id = 1; id <= 80; id++) {
    const customer = rnd.pick(customers)
    const status = rnd.pick([
      'active',
      'active',
      'active',
      'active',
      'active',
      'active',
      'trialing',
      'past_due',
      'canceled',
      'expired',
    ])
    const end =
      status === 'expired'
        ? within(now - 120 * day, now - day)
        : status === 'past_due'
          ? within(now - 10 * day, now)
          : id <= soon.length
            ? now + soon[id - 1]!
            : within(now - day, now + 30 * day)
    subscriptions.push({
      id,
      customer,
      plan: rnd.pick(plans),
      status,
      current_period_end: iso(end),
      cancel_at_period_end: status === 'active' && rnd.chance(0.1),
      contact_email: rnd.chance(0.9) ? `accounts@${slug(customer)}.example` : null,
    })
  }

  return { licenses, subscriptions }
}
