-- Monitoring: alert-policy state, health targets and samples, performance metric samples.

-- One row per alert-policy key (a health target, a threshold, a certificate): the failure streak and what was sent.
create table if not exists jobs.alert_policy_state (
  key text primary key,
  failures int not null default 0,
  first_failure_at timestamptz,
  last_failure_at timestamptz,
  last_success_at timestamptz,
  alerted_at timestamptz,
  last_notified_at timestamptz,
  notifications int not null default 0,
  suppressed_by text,
  last_error text,
  updated_at timestamptz not null default now()
);

-- The latest known state of each health target.
create table if not exists jobs.health_targets (
  target text primary key,
  kind text not null check (kind in ('database', 'http')),
  up boolean not null,
  checked_at timestamptz not null,
  last_up_at timestamptz,
  latency_ms double precision,
  status_code int,
  error text,
  cert_expires_at timestamptz
);

-- One row per target and health-check run; pruned after 30 days.
create table if not exists jobs.health_samples (
  id bigint generated always as identity primary key,
  checked_at timestamptz not null,
  target text not null,
  kind text not null,
  up boolean not null,
  latency_ms double precision,
  status_code int,
  error text,
  cert_days_left double precision,
  run_id bigint
);
create index if not exists health_samples_target_idx on jobs.health_samples (target, checked_at desc);
create index if not exists health_samples_checked_idx on jobs.health_samples (checked_at);

-- One numeric sample per metric, subject (URL, table, replica or '') and performance run; pruned after 30 days.
create table if not exists jobs.metric_samples (
  id bigint generated always as identity primary key,
  sampled_at timestamptz not null,
  metric text not null,
  subject text not null default '',
  value double precision not null,
  run_id bigint
);
create index if not exists metric_samples_metric_idx on jobs.metric_samples (metric, subject, sampled_at desc);
create index if not exists metric_samples_sampled_idx on jobs.metric_samples (sampled_at);
