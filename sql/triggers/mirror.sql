-- ferry.guard_row(): BEFORE INSERT OR UPDATE on every mirror table, installed by ferry for
-- each mapped table (`ferry_guard`) with two arguments generated from the mappings:
--   1. {column: owner} for the columns users may not write: inbound (read-only) fields, owned
--      by the app they come from, and each mapping's remote id column, owned by ferry;
--   2. [column, ...] every mapped column.
-- A user write to a read-only column fails and changes nothing; a user write to a mapped
-- column stamps its time in `_ferry_modified` ({column: time}), which last_write_wins compares
-- with the remote record's update time, and who wrote it (`"~by": {column: "role via
-- application_name"}`), the origin ferry.history gives the change it sends. Ferry's own writes (apply, backfill, the remote id of
-- a create, a conflict resolution) set `ferry.writer` for their transaction and pass unchanged.
create or replace function ferry.guard_row()
returns trigger
language plpgsql
as $fn$
declare
    read_only jsonb := tg_argv[0]::jsonb;
    tracked   jsonb := tg_argv[1]::jsonb;
    n         jsonb;
    o         jsonb;
    stamps    jsonb;
    k         text;
    stamp     jsonb := to_jsonb(clock_timestamp());
    writers   jsonb := '{}';
    who       text;
begin
    if current_setting('ferry.writer', true) = 'on' then
        return new;
    end if;
    who := session_user || ' via ' || coalesce(nullif(current_setting('application_name', true), ''), 'an unnamed client');
    n := to_jsonb(new);
    if tg_op = 'UPDATE' then
        o := to_jsonb(old);
        stamps := coalesce(nullif(o -> '_ferry_modified', 'null'), '{}');
    else
        o := '{}';
        stamps := '{}';
    end if;
    for k in select jsonb_object_keys(read_only) loop
        if coalesce(n -> k, 'null') is distinct from coalesce(o -> k, 'null') then
            raise exception 'column "%" of %.% is read-only in the hub: % owns it',
                            k, tg_table_schema, tg_table_name, read_only ->> k
                  using errcode = 'insufficient_privilege',
                        hint = 'edit it in the app; ferry brings the change here. Writable columns are listed in ferry.writable_columns.';
        end if;
    end loop;
    for k in select jsonb_array_elements_text(tracked) loop
        if tg_op = 'INSERT' or (n -> k) is distinct from (o -> k) then
            stamps := stamps || jsonb_build_object(k, stamp);
            writers := writers || jsonb_build_object(k, who);
        end if;
    end loop;
    if writers <> '{}' then
        -- who wrote each column, for ferry.history's origin of the change it sends
        stamps := stamps || jsonb_build_object('~by', coalesce(stamps -> '~by', '{}') || writers);
    end if;
    if stamps is distinct from coalesce(nullif(n -> '_ferry_modified', 'null'), '{}') then
        new := jsonb_populate_record(new, jsonb_build_object('_ferry_modified', stamps));
    end if;
    return new;
end
$fn$;

-- ferry.writable_columns: per mirror table column, whether users may write it and who owns it.
create or replace view ferry.writable_columns as
select m.hub_schema, m.hub_table, f.hub_column as column_name, m.connection, f.remote_property,
       f.direction, f.direction <> 'inbound' as writable,
       case f.direction when 'inbound' then m.connection || ' owns it (read-only in the hub)'
                        when 'outbound' then 'the hub owns it (pushed to ' || m.connection || ')'
                        else 'synced both ways' end as rule
  from ferry.mappings m
  join ferry.fields f on f.mapping_id = m.id
 order by m.hub_schema, m.hub_table, f.position;
