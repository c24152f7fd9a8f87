-- Reports and billing notices leave through the outbox.
--
-- A report's email and Slack post, a billing change's customer notice and the admins' billing digest are messages in
-- jobs.messages, queued in the transaction that stores the report or records the change (or, for the digest, marks
-- the changes it lists), and delivered per channel through jobs.deliveries. The ledgers they replace
-- (jobs.reports.deliveries and sends; the notice_* and digest_sent_at columns of jobs.billing_changes) are carried
-- over once, below, and dropped (but two, see the end).

-- The customer notice of a change (null: no contact email) and the digest that listed it (null: not listed yet).
alter table jobs.billing_changes add column if not exists notice_message_id bigint;
alter table jobs.billing_changes add column if not exists digest_message_id bigint;

do $$
begin
  -- A report a channel already took becomes its message, sent on that channel: a re-run of the period sends nothing.
  if exists (select 1 from information_schema.columns
             where table_schema = 'jobs' and table_name = 'reports' and column_name = 'deliveries') then
    insert into jobs.messages (created_at, job, kind, key, title, subject, text, message_id)
    select r.generated_at, 'reports/' || r.kind, 'report', 'report:' || r.kind || ':' || r.period,
           coalesce(r.data->>'title', r.kind),
           coalesce(r.data->>'title', r.kind) || ': ' || coalesce(r.data->>'label', r.period), r.markdown,
           '<admin-jobs.report.' || r.kind || '.' || r.period || '@localhost>'
    from jobs.reports r where r.deliveries <> '{}'
    on conflict (key) do nothing;
    insert into jobs.deliveries (message_id, channel, status, attempts, sent_at)
    select m.id, d.key, 'sent', 1, d.value::timestamptz
    from jobs.reports r
    cross join lateral jsonb_each_text(r.deliveries) d
    join jobs.messages m on m.key = 'report:' || r.kind || ':' || r.period
    where d.key in ('email', 'slack')
    on conflict do nothing;
  end if;

  if exists (select 1 from information_schema.columns
             where table_schema = 'jobs' and table_name = 'billing_changes' and column_name = 'notice_attempts') then
    -- A notice that was sent, given up (five failed attempts) or skipped (no SMTP_URL) becomes its message, so it is
    -- not sent again. One still pending keeps no message: the job queues it on its next run (within 7 days).
    insert into jobs.messages (created_at, job, kind, key, title, subject, text, message_id)
    select c.changed_at, 'billing/licenses', 'billing-notice', 'billing/licenses:notice:' || c.id,
           c.action || ' notice to ' || c.customer, c.action || ' notice to ' || c.customer,
           'Handled before billing notices moved to the outbox; its text was not kept.',
           '<admin-jobs.billing-notice.' || c.id || '@localhost>'
    from jobs.billing_changes c
    where c.contact_email is not null and c.notice_message_id is null
      and (c.notice_status in ('sent', 'skipped') or c.notice_attempts >= 5)
    on conflict (key) do nothing;
    insert into jobs.deliveries (message_id, channel, recipients, status, attempts, sent_at, last_error)
    select m.id, 'email', array[c.contact_email], case when c.notice_status = 'sent' then 'sent' else 'failed' end,
           c.notice_attempts, c.notice_sent_at, c.notice_error
    from jobs.billing_changes c join jobs.messages m on m.key = 'billing/licenses:notice:' || c.id
    where c.notice_status <> 'skipped'
    on conflict do nothing;
    update jobs.billing_changes c set notice_message_id = m.id
    from jobs.messages m where m.key = 'billing/licenses:notice:' || c.id and c.notice_message_id is null;

    -- Each digest sent (its changes share one digest_sent_at) becomes one message, so its changes are not listed again.
    insert into jobs.messages (created_at, job, kind, key, title, subject, text, message_id)
    select digest_sent_at, 'billing/licenses', 'billing-digest',
           'billing/licenses:digest:' || min(id) || '-' || max(id),
           'Billing: ' || count(*) || ' license/subscription change' || case when count(*) = 1 then '' else 's' end,
           'Billing: ' || count(*) || ' license/subscription change' || case when count(*) = 1 then '' else 's' end,
           'Sent before billing notices moved to the outbox; its text was not kept.',
           '<admin-jobs.billing-digest.' || min(id) || '@localhost>'
    from jobs.billing_changes where digest_sent_at is not null and digest_message_id is null
    group by digest_sent_at
    on conflict (key) do nothing;
    update jobs.billing_changes c set digest_message_id = m.id
    from jobs.messages m
    where m.kind = 'billing-digest' and m.created_at = c.digest_sent_at and c.digest_message_id is null;
  end if;
end $$;

alter table jobs.reports drop column if exists deliveries;
alter table jobs.reports drop column if exists sends;

-- notice_status and digest_sent_at stay, read by nothing, because 0006_billing_backups.sql indexes them and must stay
-- safe to run again; changes recorded from now on leave them null.
drop index if exists jobs.billing_changes_notice_idx;
drop index if exists jobs.billing_changes_digest_idx;
alter table jobs.billing_changes alter column notice_status drop not null;
alter table jobs.billing_changes alter column notice_status drop default;
alter table jobs.billing_changes drop column if exists notice_attempts;
alter table jobs.billing_changes drop column if exists notice_sent_at;
alter table jobs.billing_changes drop column if exists notice_error;
-- The changes whose notice or digest is still to be queued.
create index if not exists billing_changes_unnoticed_idx on jobs.billing_changes (id)
  where notice_message_id is null and contact_email is not null;
create index if not exists billing_changes_undigested_idx on jobs.billing_changes (id) where digest_message_id is null;
