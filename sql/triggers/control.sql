-- Live configuration: a change to ferry.mappings or ferry.fields (from `ferry apply` or a psql
-- admin) notifies the running engine on channel ferry_control.
create or replace function ferry.notify_control() returns trigger
language plpgsql
as $fn$
begin
    perform pg_notify('ferry_control', json_build_object('table', tg_table_name, 'op', tg_op)::text);
    return null;
end
$fn$;

drop trigger if exists mappings_notify on ferry.mappings;
create trigger mappings_notify
    after insert or delete or update of state, conflict_policy, soft_delete, match_key, backfill_state on ferry.mappings
    for each statement execute function ferry.notify_control();

drop trigger if exists fields_notify on ferry.fields;
create trigger fields_notify after insert or update or delete on ferry.fields
    for each statement execute function ferry.notify_control();
