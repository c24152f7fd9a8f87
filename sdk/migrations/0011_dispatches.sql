-- Dispatches of schedule slots through the GitHub API (`pnpm jobs dispatch`, the watchdog's catch-up runs).
--
-- One row per job and slot, claimed before the API call: a second dispatcher (or the watchdog) finds the claim and
-- sends nothing, so a slot is dispatched at most once. A dispatch GitHub refused is released (status `refused`) and
-- may be claimed again; one whose answer was lost stays `sent`, since GitHub may have taken it.
create table if not exists jobs.dispatches (
  job text not null,
  slot timestamptz not null,
  claimed_at timestamptz not null default now(),
  claimed_by text not null,
  status text not null default 'claimed',
  workflow text,
  error text,
  primary key (job, slot)
);
create index if not exists dispatches_claimed_idx on jobs.dispatches (claimed_at);
