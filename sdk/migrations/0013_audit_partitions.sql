-- cleanup/audit-logs on a range-partitioned public.audit_logs: whole partitions past retention go to month files and
-- are dropped. A month whose file holds rows of a dropped partition is sealed: that file is their only copy, so it is
-- merged with new rows, never rebuilt from the archive table alone. pending_sha256 is the sum of a file about to
-- replace it, so a run killed between the rename and the record still recognises the file on disk.
alter table jobs.audit_logs_archive_months add column if not exists sealed boolean not null default false;
alter table jobs.audit_logs_archive_months add column if not exists pending_sha256 text;

-- Partitions detached from audit_logs whose rows are not yet in sealed month files: a killed run's successor finishes
-- them (writes the files, then drops the table).
create table if not exists jobs.audit_logs_detached (
  relation text primary key,
  detached_at timestamptz not null default now()
);
