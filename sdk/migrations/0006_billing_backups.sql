-- billing/licenses: one row per status change, written in the transaction that makes the change (with its audit_logs
-- row). Until 0012_reports_billing_outbox.sql the row was also the ledger of the change's notices (sent after the
-- commit and marked here); since then the notices are messages in the outbox, linked from the row.
create table if not exists jobs.billing_changes (
  id bigint generated always as identity primary key,
  changed_at timestamptz not null default now(),
  run_id bigint,
  entity text not null check (entity in ('license', 'subscription')),
  entity_id bigint not null,
  action text not null,
  customer text not null,
  contact_email text,
  before jsonb not null,
  after jsonb not null,
  audit_log_id bigint,
  notice_status text not null default 'pending' check (notice_status in ('pending', 'sent', 'failed', 'skipped')),
  notice_attempts int not null default 0,
  notice_sent_at timestamptz,
  notice_error text,
  digest_sent_at timestamptz
);
create index if not exists billing_changes_notice_idx on jobs.billing_changes (id) where notice_status in ('pending', 'failed');
create index if not exists billing_changes_digest_idx on jobs.billing_changes (id) where digest_sent_at is null;
create index if not exists billing_changes_entity_idx on jobs.billing_changes (entity, entity_id);

-- The transition queries: candidates by status and date.
create index if not exists licenses_status_expires_idx on public.licenses (status, expires_at);
create index if not exists subscriptions_status_period_idx on public.subscriptions (status, current_period_end);

-- backups/database: one row per dump, from the moment pg_dump starts; pruned files keep their row (pruned_at).
create table if not exists jobs.backups (
  id bigint generated always as identity primary key,
  run_id bigint,
  database text not null,
  file text not null,
  status text not null default 'running' check (status in ('running', 'created', 'verified', 'verification_failed', 'failed')),
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  taken_at timestamptz not null,
  size_bytes bigint,
  sha256 text,
  dump_ms int,
  server_version text,
  pg_dump_version text,
  error text,
  -- Row counts per table in the dump's snapshot (taken when a restore check is configured), for later verifications.
  table_counts jsonb,
  pruned_at timestamptz
);
create index if not exists backups_database_taken_idx on jobs.backups (database, taken_at desc);
create index if not exists backups_file_idx on jobs.backups (file);

-- One row per verification of a backup (every new backup, and each `--verify` run).
create table if not exists jobs.backup_verifications (
  id bigint generated always as identity primary key,
  backup_id bigint references jobs.backups (id) on delete set null,
  run_id bigint,
  file text not null,
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  status text not null check (status in ('passed', 'failed')),
  checksum_ok boolean,
  toc_entries int,
  restored boolean not null default false,
  tables int,
  rows bigint,
  mismatches jsonb not null default '[]',
  verify_ms int,
  error text
);
create index if not exists backup_verifications_backup_idx on jobs.backup_verifications (backup_id);

-- Databases that applied an earlier draft of this file lack these columns.
alter table jobs.backups add column if not exists table_counts jsonb;
