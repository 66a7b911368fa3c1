-- ferry.history: every field change ferry sent (hub_to_app) or applied (app_to_hub): when,
-- mapping, hub table, row key, remote id, field, old and new value, operation, origin (a hub
-- edit: the editing session's role and application_name; an app edit: the path it came by and
-- what the app said about its source, e.g. HubSpot's changeSource), and the conflict that
-- decided it, if one did. A deletion is one row with field '*'.
create or replace view ferry.history as
select c.at, m.name as mapping, format('%I.%I', m.hub_schema, m.hub_table) as hub_table,
       c.row_key, c.remote_id, c.field, c.old_value, c.new_value,
       case c.direction when 'hub_to_app' then 'hub → ' || m.connection else m.connection || ' → hub' end as direction,
       c.operation, c.origin, c.conflict_id, c.id
  from ferry.field_changes c
  join ferry.mappings m on m.id = c.mapping_id;

-- ferry.row_history(table, row key): one hub row's story, oldest first, across every mapping
-- of that table.
create or replace function ferry.row_history(p_table regclass, p_row_key bigint)
returns table (at timestamptz, mapping text, field text, old_value jsonb, new_value jsonb,
               direction text, operation text, origin text, conflict_id bigint, remote_id text)
language sql
security definer set search_path = pg_catalog, ferry, pg_temp
stable
as $fn$
    select c.at, m.name, c.field, c.old_value, c.new_value,
           case c.direction when 'hub_to_app' then 'hub → ' || m.connection else m.connection || ' → hub' end,
           c.operation, c.origin, c.conflict_id, c.remote_id
      from ferry.mappings m
      join ferry.field_changes c on c.mapping_id = m.id and c.row_key = p_row_key
     where format('%I.%I', m.hub_schema, m.hub_table)::regclass = p_table
     order by c.id;
$fn$;

-- ferry.history_on(): whether history is recorded (retention above zero).
create or replace function ferry.history_on()
returns boolean
language sql
stable
as $fn$
    select coalesce((select retention > interval '0' from ferry.history_settings), false);
$fn$;

-- ferry.prune_history(): removes rows older than the retention; returns how many.
create or replace function ferry.prune_history()
returns bigint
language plpgsql
security definer set search_path = pg_catalog, ferry, pg_temp
as $fn$
declare
    n bigint;
begin
    delete from ferry.field_changes
     where at < now() - (select retention from ferry.history_settings);
    get diagnostics n = row_count;
    return n;
end
$fn$;
