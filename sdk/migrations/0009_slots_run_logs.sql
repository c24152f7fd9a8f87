-- Schedule slots and run logs.
--
-- jobs.runs.slot: the fire time of the job's schedule a run serves (the latest at or before its start). A scheduled
-- or dispatched run whose slot already has a succeeded run ends `skipped`, so two triggers of one slot run it once.
alter table jobs.runs add column if not exists slot timestamptz;
create index if not exists runs_served_slot_idx on jobs.runs (job, slot) where status = 'succeeded';

-- The log lines of every run, bounded per run (a last line says when they were cut), kept with the run's history.
create table if not exists jobs.run_logs (
  run_id bigint not null,
  seq int not null,
  at timestamptz not null,
  level text not null,
  line text not null,
  primary key (run_id, seq)
);
create index if not exists run_logs_at_idx on jobs.run_logs (at);

-- An incident that ends by going quiet (a security burst) has no healthy observation to close it: it counts as over
-- once this time passes (its last failure plus its quiet period).
alter table jobs.incidents add column if not exists quiet_until timestamptz;
