-- Operations: maintenance pauses and what the watchdog did to workflows.

-- A pause of one job (or `all`) until a time; resuming sets resumed_at. Rows are kept as an audit trail.
create table if not exists jobs.pauses (
  id bigint generated always as identity primary key,
  target text not null,
  reason text not null,
  paused_until timestamptz not null,
  created_at timestamptz not null default now(),
  created_by text,
  resumed_at timestamptz
);
create index if not exists pauses_active_idx on jobs.pauses (target) where resumed_at is null;

-- Every action the watchdog took (or reported) on a workflow through the GitHub API.
create table if not exists jobs.watchdog_actions (
  id bigint generated always as identity primary key,
  created_at timestamptz not null default now(),
  workflow text not null,
  job text,
  action text not null,
  detail text
);
create index if not exists watchdog_actions_created_idx on jobs.watchdog_actions (created_at);
