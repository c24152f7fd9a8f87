-- Notifications: the expiry-notice ledger, the daily expired-items digest, security incidents, and the indexes their
-- queries need. Watermarks live in jobs.job_state (job 'notifications/security-alerts', key 'watermark').

-- One row per (item, expiry, threshold) notice that was sent. The expiry timestamp is part of the key so a renewed
-- item (expiry moved later) becomes eligible again. Rows are inserted inside the transaction that sends the email, so
-- a failed send rolls its claim back and a concurrent run waits on the row lock, then sees the conflict.
create table if not exists jobs.expiry_notices (
  item_kind text not null check (item_kind in ('credential', 'license', 'subscription')),
  item_id text not null,
  expires_at timestamptz not null,
  threshold_days int not null,
  recipient text,
  label text not null default '',
  sent_at timestamptz not null default now(),
  digested_at timestamptz,
  primary key (item_kind, item_id, expires_at, threshold_days)
);
create index if not exists expiry_notices_undigested_idx on jobs.expiry_notices (sent_at) where digested_at is null;

-- One row per day on which the admins' digest listed the already-expired items.
create table if not exists jobs.expiry_digests (
  day date primary key,
  sent_at timestamptz not null default now(),
  expired int not null default 0
);

-- Security incidents of windowed rules: a burst that keeps going extends its incident instead of opening a new one.
create table if not exists jobs.security_incidents (
  rule text not null,
  subject text not null,
  started_at timestamptz not null,
  last_at timestamptz not null,
  events int not null,
  primary key (rule, subject, started_at)
);
create index if not exists security_incidents_last_idx on jobs.security_incidents (rule, subject, last_at desc);

-- Expiry scans read only live items close to expiry.
create index if not exists credentials_live_expires_at_idx on public.credentials (expires_at)
  where revoked_at is null and expires_at is not null;
create index if not exists licenses_active_expires_at_idx on public.licenses (expires_at) where status = 'active';
create index if not exists subscriptions_ending_idx on public.subscriptions (current_period_end)
  where cancel_at_period_end and status in ('trialing', 'active', 'past_due');

-- Security rules look up history per subject; partial indexes keep them small on a 10M-row audit_logs
-- (the primary key serves the new-events scan by id; audit_logs_occurred_at_idx the first-run 24-hour look-back).
create index if not exists audit_logs_failed_ip_idx on public.audit_logs (ip, occurred_at)
  where action = 'auth.login_failed';
create index if not exists audit_logs_failed_email_idx on public.audit_logs ((lower(metadata ->> 'email')), occurred_at)
  where action = 'auth.login_failed';
create index if not exists audit_logs_login_actor_ip_idx on public.audit_logs (actor_id, ip, occurred_at)
  where action = 'auth.login';
