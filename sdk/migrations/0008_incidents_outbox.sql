-- One incident model and an outbox.
--
-- jobs.incidents: every alertable condition by key (a failing job, a health target, a missed schedule, a security
-- burst): its failure streak, whether and when people were told, and when it ended. It replaces jobs.alert_state
-- and jobs.alert_policy_state (and the burst records of jobs.security_incidents).
--
-- jobs.messages + jobs.deliveries: every message that leaves the system (alerts, reminders, recoveries, reports,
-- expiry notices and digests, billing notices) is written in the transaction that decided it, then delivered and
-- marked per channel. A run that dies leaves its undelivered messages to the next run. jobs.messages replaces
-- jobs.alerts as the record of what was said.

create table if not exists jobs.incidents (
  key text primary key,
  job text,
  status text not null default 'open' check (status in ('open', 'resolved')),
  severity text not null check (severity in ('critical', 'warning', 'info')),
  title text not null,
  detail text,
  fields jsonb not null default '{}',
  opened_at timestamptz,
  last_failure_at timestamptz,
  last_success_at timestamptz,
  resolved_at timestamptz,
  failures int not null default 0,
  occurrences int not null default 0,
  alerted_at timestamptz,
  last_notified_at timestamptz,
  notifications int not null default 0,
  suppressed_by text,
  updated_at timestamptz not null default now()
);
create index if not exists incidents_open_idx on jobs.incidents (severity, opened_at) where status = 'open';

create table if not exists jobs.messages (
  id bigint generated always as identity primary key,
  created_at timestamptz not null default now(),
  job text,
  run_id bigint,
  kind text not null,
  -- Idempotency: a message with a key is queued once, however often its job (or a retry of it) asks.
  key text unique,
  incident_key text,
  severity text,
  -- The headline without the subject's tag, as reports list it.
  title text,
  subject text not null,
  text text not null,
  html text,
  slack jsonb,
  attachments jsonb,
  message_id text not null
);
create index if not exists messages_created_idx on jobs.messages (created_at);
create index if not exists messages_incident_idx on jobs.messages (incident_key, created_at desc);

create table if not exists jobs.deliveries (
  message_id bigint not null references jobs.messages (id) on delete cascade,
  channel text not null check (channel in ('email', 'slack')),
  recipients text[] not null default '{}',
  status text not null default 'pending' check (status in ('pending', 'sending', 'sent', 'failed', 'refused')),
  attempts int not null default 0,
  next_attempt_at timestamptz not null default now(),
  lease_until timestamptz,
  sent_at timestamptz,
  last_error text,
  primary key (message_id, channel)
);
create index if not exists deliveries_due_idx on jobs.deliveries (next_attempt_at) where status in ('pending', 'sending');

-- Carry over what the earlier tables knew, once (they are dropped below).
do $$
begin
  if to_regclass('jobs.alert_policy_state') is not null then
    insert into jobs.incidents (key, status, severity, title, detail, opened_at, last_failure_at, last_success_at,
                                failures, occurrences, alerted_at, last_notified_at, notifications, suppressed_by)
    select key, case when failures > 0 then 'open' else 'resolved' end, 'critical', key, last_error,
           first_failure_at, last_failure_at, last_success_at, failures, failures, alerted_at, last_notified_at,
           notifications, suppressed_by
    from jobs.alert_policy_state
    on conflict (key) do nothing;
  end if;
  if to_regclass('jobs.alert_state') is not null then
    insert into jobs.incidents (key, status, severity, title, opened_at, last_failure_at, resolved_at, failures,
                                occurrences, alerted_at, last_notified_at, notifications)
    select dedupe_key, status, severity, title, opened_at, last_seen_at, resolved_at,
           case when status = 'open' then occurrences else 0 end, occurrences,
           case when sends > 0 then opened_at end, last_sent_at, sends
    from jobs.alert_state
    on conflict (key) do nothing;
  end if;
  if to_regclass('jobs.alerts') is not null then
    insert into jobs.messages (created_at, job, kind, incident_key, severity, title, subject, text, message_id)
    select created_at, job, kind, dedupe_key, severity, title, title, coalesce(text, ''),
           '<admin-jobs.alert.' || id || '@localhost>'
    from jobs.alerts;
  end if;
end $$;

drop table if exists jobs.alert_policy_state;
drop table if exists jobs.alert_state;
drop table if exists jobs.alerts;
drop table if exists jobs.security_incidents;
