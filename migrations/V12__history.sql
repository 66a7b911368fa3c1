-- Every change is on record: one row per field change ferry sent or applied (ferry.history
-- shows it with names; ferry.row_history(table, row key) one row's story). Written in the
-- transactions that send or apply the change; pruned past the retention in the background.
-- No primary key, and one index for the row lookups: each row costs a change as little as
-- possible (a BRIN on the time serves the pruning).
create table ferry.field_changes (
    id          bigint generated always as identity,
    at          timestamptz not null default now(),
    mapping_id  integer not null,
    row_key     bigint,
    remote_id   text,
    field       text not null,
    old_value   jsonb,
    new_value   jsonb,
    direction   text not null check (direction in ('hub_to_app', 'app_to_hub')),
    operation   text not null check (operation in ('create', 'update', 'delete')),
    origin      text,
    conflict_id bigint
);
create index field_changes_row on ferry.field_changes (mapping_id, row_key);
create index field_changes_age on ferry.field_changes using brin (at);

-- one row: how long history is kept ('0': not recorded at all); set from ferry.toml's
-- [engine] history_retention at every apply
create table ferry.history_settings (
    single    boolean primary key default true check (single),
    retention interval not null default '30 days'
);
insert into ferry.history_settings default values;
