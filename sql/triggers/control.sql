-- Live configuration: a change to ferry.mappings or ferry.fields (from `ferry apply` or a psql
-- admin) notifies the running engine on channel ferry_control. Bookkeeping updates (backfill
-- progress, last sync times) do not.
create or replace function ferry.notify_control() returns trigger
language plpgsql
as $fn$
begin
    perform pg_notify('ferry_control', json_build_object('table', tg_table_name, 'op', tg_op)::text);
    return null;
end
$fn$;

drop trigger if exists mappings_notify on ferry.mappings;
create trigger mappings_notify after insert or delete on ferry.mappings
    for each statement execute function ferry.notify_control();

drop trigger if exists mappings_notify_update on ferry.mappings;
create trigger mappings_notify_update after update on ferry.mappings
    for each row
    when ((old.state, old.conflict_policy, old.soft_delete, old.match_key, old.connection, old.remote_object,
           old.hub_schema, old.hub_table, old.backfill_state = 'done', old.on_hub_delete, old.row_filter, old.on_remote_delete)
          is distinct from
          (new.state, new.conflict_policy, new.soft_delete, new.match_key, new.connection, new.remote_object,
           new.hub_schema, new.hub_table, new.backfill_state = 'done', new.on_hub_delete, new.row_filter, new.on_remote_delete))
    execute function ferry.notify_control();

drop trigger if exists fields_notify on ferry.fields;
create trigger fields_notify after insert or update or delete on ferry.fields
    for each statement execute function ferry.notify_control();

-- A deleted mapping takes its per-record state with it. links, outbox, reconcile_seen and
-- tombstones have no foreign key (V7: the check cost a query per inserted row); this is their
-- "on delete cascade".
create or replace function ferry.mappings_cleanup() returns trigger
language plpgsql
as $fn$
begin
    delete from ferry.links where mapping_id in (select id from gone);
    delete from ferry.outbox where mapping_id in (select id from gone);
    delete from ferry.reconcile_seen where mapping_id in (select id from gone);
    delete from ferry.tombstones where mapping_id in (select id from gone);
    delete from ferry.detached where mapping_id in (select id from gone);
    return null;
end
$fn$;

create or replace trigger mappings_cleanup after delete on ferry.mappings
    referencing old table as gone
    for each statement execute function ferry.mappings_cleanup();
