-- Audit-log archive (cleanup/audit-logs): rows past retention move here, each exactly once (the primary key refuses a
-- second copy), in the same transaction that deletes them from public.audit_logs.
create table if not exists jobs.audit_logs_archive (
  id bigint primary key,
  occurred_at timestamptz not null,
  actor_id bigint,
  action text not null,
  target_type text,
  target_id text,
  ip inet,
  user_agent text,
  metadata jsonb not null default '{}',
  archived_at timestamptz not null default now()
);
-- Month files are read in (occurred_at, id) order.
create index if not exists audit_logs_archive_occurred_idx on jobs.audit_logs_archive (occurred_at, id);

-- One row per month of archived rows: `dirty` is set in the moving transaction and cleared once the month's file is
-- written, so a run killed in between rebuilds exactly the months it touched.
create table if not exists jobs.audit_logs_archive_months (
  month text primary key check (month ~ '^\d{4}-\d{2}$'),
  dirty boolean not null default true,
  rows bigint,
  bytes bigint,
  sha256 text,
  built_at timestamptz
);
