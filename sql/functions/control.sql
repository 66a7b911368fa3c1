-- The psql control plane: pause, resume, resync a mapping; resolve a manual conflict.
-- Each one notifies the running engine on channel ferry_control (the mappings trigger does for
-- state changes); the engine reloads its catalog and wakes its workers within a second.

-- the mapping named p_mapping, or a clear error listing where to find the names
create or replace function ferry.mapping_named(p_mapping text)
returns ferry.mappings
language plpgsql
stable
as $fn$
declare
    m ferry.mappings;
begin
    select * into m from ferry.mappings where name = p_mapping;
    if not found then
        raise exception 'no mapping named %', quote_literal(p_mapping)
              using errcode = 'no_data_found',
                    hint = 'select mapping from ferry.status; lists them (names are <connection>.<object>)';
    end if;
    return m;
end
$fn$;

-- ferry.pause(mapping): hub changes keep queueing in ferry.outbox (see ferry.status) but are
-- not sent. The app's changes still arrive, so when both sides edited a field meanwhile the
-- mapping's conflict policy decides (queued hub values do not silently overwrite them).
create or replace function ferry.pause(p_mapping text)
returns text
language plpgsql
security definer set search_path = pg_catalog, ferry, pg_temp
as $fn$
declare
    m ferry.mappings := ferry.mapping_named(p_mapping);
begin
    update ferry.mappings set state = 'paused', updated_at = now() where id = m.id and state <> 'paused';
    return format('%s paused: changes queue up (ferry.status shows the backlog) until ferry.resume(%L)', m.name, m.name);
end
$fn$;

-- ferry.resume(mapping): the queued changes drain.
create or replace function ferry.resume(p_mapping text)
returns text
language plpgsql
security definer set search_path = pg_catalog, ferry, pg_temp
as $fn$
declare
    m ferry.mappings := ferry.mapping_named(p_mapping);
begin
    update ferry.mappings set state = 'active', updated_at = now() where id = m.id and state <> 'active';
    return format('%s resumed: %s queued changes drain', m.name,
                  (select count(*) from ferry.outbox o where o.mapping_id = m.id));
end
$fn$;

-- ferry.resync(mapping): read every record of the app again (a fresh backfill): records the
-- hub lacks are added, drifted values repaired by the usual field-level merge.
create or replace function ferry.resync(p_mapping text)
returns text
language plpgsql
security definer set search_path = pg_catalog, ferry, pg_temp
as $fn$
declare
    m ferry.mappings := ferry.mapping_named(p_mapping);
begin
    update ferry.mapping_progress set backfill_after = null, backfill_pages = 0, backfill_rows = 0
     where mapping_id = m.id;
    update ferry.mappings set backfill_state = 'pending', updated_at = now() where id = m.id;
    perform pg_notify('ferry_control', json_build_object('resync', m.name)::text);
    return format('%s: resync started (ferry.status shows backfill_state and backfill_rows)', m.name);
end
$fn$;

-- ferry.resolve(conflict, 'hub' | 'remote'): ends a manual conflict. 'hub' sends the hub's
-- current value of the field to the app; 'remote' writes the app's latest value into the hub.
create or replace function ferry.resolve(p_conflict bigint, p_side text)
returns text
language plpgsql
security definer set search_path = pg_catalog, ferry, pg_temp
as $fn$
declare
    c      ferry.conflicts;
    m      ferry.mappings;
    tbl    text;
    remote jsonb;
begin
    if p_side is null or p_side not in ('hub', 'remote') then
        raise exception 'ferry.resolve: the side is ''hub'' or ''remote'', not %', coalesce(quote_literal(p_side), 'null')
              using errcode = 'invalid_parameter_value';
    end if;
    select * into c from ferry.conflicts where id = p_conflict for update;
    if not found then
        raise exception 'ferry.resolve: there is no conflict %', p_conflict
              using errcode = 'no_data_found', hint = 'select * from ferry.open_conflicts; lists the open ones';
    end if;
    if c.decision <> 'held' or c.resolved_at is not null then
        raise exception 'ferry.resolve: conflict % is not open (decided %, resolved %)',
                        p_conflict, c.decision, coalesce(c.resolved_at::text, 'never')
              using errcode = 'invalid_parameter_value';
    end if;
    select * into m from ferry.mappings where id = c.mapping_id;
    tbl := format('%I.%I', m.hub_schema, m.hub_table);
    -- the link first, then the row: the order ferry.apply and the workers lock them in
    select l.base -> c.field into remote from ferry.links l
     where l.mapping_id = c.mapping_id and l.row_key = c.row_key for update;
    if p_side = 'remote' then
        perform set_config('ferry.writer', 'on', true);
        execute format('update %s t set %I = r.%I from jsonb_populate_record(null::%s, $1) r where t.%I = $2',
                       tbl, c.field, c.field, tbl, m.key_column)
          using jsonb_build_object(c.field, coalesce(remote, c.remote_value)), c.row_key;
        perform set_config('ferry.writer', 'off', true);
    else
        insert into ferry.outbox (mapping_id, row_key) values (c.mapping_id, c.row_key)
        on conflict (mapping_id, row_key) do update set seq = ferry.outbox.seq + 1, marked_at = now();
    end if;
    update ferry.conflicts set decision = p_side, resolved_at = now(), resolved_by = session_user::text
     where id = p_conflict;
    perform pg_notify('ferry_control', json_build_object('resolved', p_conflict)::text);
    return format('conflict %s resolved: %s', p_conflict,
                  case p_side when 'hub' then 'the hub value goes to ' || m.connection
                              else 'the ' || m.connection || ' value is in the hub' end);
end
$fn$;
