-- Progress counters move off the ferry.mappings row into their own table.
--
-- Every outbox claim reads ferry.mappings to skip paused mappings; the backfill wrote its
-- progress into the same row once per page, and the thousand dead versions a 100,000-record
-- backfill left behind were walked again by every claim (the outbound drain fell from ~14,000
-- to ~6,000 changes/s until a vacuum). The mappings row now changes only when its
-- configuration or state does.
create table ferry.mapping_progress (
    mapping_id         integer primary key references ferry.mappings (id) on delete cascade,
    backfill_after     text,
    backfill_pages     bigint not null default 0,
    backfill_rows      bigint not null default 0,
    backfilled_at      timestamptz,
    polled_at          timestamptz,
    poll_records       bigint not null default 0,
    reconciled_at      timestamptz,
    reconcile_deleted  bigint not null default 0,
    reconcile_repaired bigint not null default 0,
    last_inbound_at    timestamptz,
    last_outbound_at   timestamptz
);

insert into ferry.mapping_progress
select id, backfill_after, backfill_pages, backfill_rows, backfilled_at, polled_at, poll_records,
       reconciled_at, reconcile_deleted, reconcile_repaired, last_inbound_at, last_outbound_at
  from ferry.mappings;

drop view if exists ferry.status;
drop view if exists ferry.row_sync;

alter table ferry.mappings
    drop column backfill_after,
    drop column backfill_pages,
    drop column backfill_rows,
    drop column backfilled_at,
    drop column polled_at,
    drop column poll_records,
    drop column reconciled_at,
    drop column reconcile_deleted,
    drop column reconcile_repaired,
    drop column last_inbound_at,
    drop column last_outbound_at;
