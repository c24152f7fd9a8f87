-- Reports: one row per (kind, period), regenerated on every run, delivered once per channel.
create table if not exists jobs.reports (
  kind text not null check (kind in ('daily', 'weekly', 'monthly')),
  period text not null,
  timezone text not null,
  period_start timestamptz not null,
  period_end timestamptz not null,
  data jsonb not null,
  markdown text not null,
  generated_at timestamptz not null default now(),
  generations int not null default 1,
  run_id bigint,
  -- Channel → time it was claimed for sending; a channel is sent again only with --force.
  deliveries jsonb not null default '{}',
  sends int not null default 0,
  primary key (kind, period)
);

-- The report queries: per-action ranges (failed logins, role changes, exports) and per-actor counts.
create index if not exists audit_logs_action_occurred_idx on public.audit_logs (action, occurred_at);
create index if not exists users_created_at_idx on public.users (created_at);
create index if not exists users_admin_role_idx on public.users (role) where role in ('admin', 'owner');
create index if not exists credentials_expires_at_idx on public.credentials (expires_at) where revoked_at is null;
create index if not exists runs_started_idx on jobs.runs (started_at);
