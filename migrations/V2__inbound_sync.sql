-- Inbound sync, production grade: replay memory for webhooks, polling and reconcile progress.

-- event ids of webhook deliveries seen recently: a replay inside the signature's tolerance
-- window is dropped even when its first delivery has already been applied and left the inbox
create table ferry.seen_events (
    connection text not null,
    event_id   text not null,
    seen_at    timestamptz not null default now(),
    primary key (connection, event_id)
);
create index seen_events_age on ferry.seen_events (seen_at);

alter table ferry.mappings
    add column polled_at          timestamptz,
    add column poll_records       bigint not null default 0,
    add column reconciled_at      timestamptz,
    add column reconcile_deleted  bigint not null default 0,
    add column reconcile_repaired bigint not null default 0;

-- remote ids one reconcile run has listed so far; emptied when the run ends
create unlogged table ferry.reconcile_seen (
    mapping_id integer not null references ferry.mappings (id) on delete cascade,
    remote_id  text not null,
    primary key (mapping_id, remote_id)
);
