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
           old.hub_schema, old.hub_table, old.backfill_state = 'done')
          is distinct from
          (new.state, new.conflict_policy, new.soft_delete, new.match_key, new.connection, new.remote_object,
           new.hub_schema, new.hub_table, new.backfill_state = 'done'))
    execute function ferry.notify_control();

drop trigger if exists fields_notify on ferry.fields;
create trigger fields_notify after insert or update or delete on ferry.fields
    for each statement execute function ferry.notify_control();
