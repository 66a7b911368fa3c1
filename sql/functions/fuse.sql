-- The mass-delete fuse (see migrations/V11__delete_fuse.sql): nothing destructive happens
-- unasked. Deletions of a mapping in either direction ask ferry.fuse_allow first; past the
-- threshold the fuse trips and every further deletion is held in ferry.deletes_held until an
-- operator runs ferry.release_deletes(mapping) (carry them out) or
-- ferry.discard_deletes(mapping) (undo them).

-- ferry.fuse_allow(mapping, side, wanted, outstanding): how many of `wanted` deletions may be
-- carried out now (the caller holds the rest); `outstanding` counts the deletions of the same
-- kind already queued behind this batch (a DELETE of many rows is claimed in batches: judged
-- whole, none of its batches goes). Decisions are serialised per mapping (the fuse row is
-- locked until the caller commits). Deletions pass while the window's count stays within
-- max_rows or within max_share of the mapping's linked rows (those linked now plus those the
-- window deleted), whichever is larger; a batch that would pass it is held whole and trips the
-- fuse, and a tripped fuse allows none. A trip is noted in the transaction's setting ferry.fuse_tripped,
-- so the caller can say it once.
create or replace function ferry.fuse_allow(p_mapping integer, p_side text, p_wanted integer,
                                            p_outstanding integer default 0)
returns integer
language plpgsql
as $fn$
declare
    f       ferry.delete_fuses;
    recent  integer;
    linked  bigint;
    room    integer;
    allowed integer;
begin
    if p_wanted <= 0 or current_setting('ferry.fuse_released', true) = 'on' then
        return greatest(p_wanted, 0);   -- an operator's release: carried out, not counted
    end if;
    select * into f from ferry.delete_fuses where mapping_id = p_mapping for update;
    if not found or not f.enabled then
        return p_wanted;
    end if;
    if f.tripped_at is not null then
        return 0;
    end if;
    delete from ferry.deletions where mapping_id = p_mapping and at < now() - f.span;
    select count(*) into recent from ferry.deletions where mapping_id = p_mapping;
    select count(*) into linked from ferry.links where mapping_id = p_mapping and remote_id is not null;
    room := greatest(f.max_rows, floor(f.max_share * (linked + recent))::integer) - recent;
    -- all or nothing: a batch that would pass the threshold is held whole, so a mass delete
    -- (one statement, one listing) loses nothing before the fuse trips
    allowed := case when greatest(p_wanted, p_outstanding) <= room then p_wanted else 0 end;
    if allowed > 0 then
        insert into ferry.deletions (mapping_id, side) select p_mapping, p_side from generate_series(1, allowed);
    end if;
    if allowed < p_wanted then
        update ferry.delete_fuses
           set tripped_at = now(),
               reason = format('%s deletions in the %s within %s, over the fuse (more than %s rows and more than %s%% of %s linked rows)',
                               recent + p_wanted, case p_side when 'hub' then 'hub' else 'app' end, f.span,
                               f.max_rows, round((f.max_share * 100)::numeric, 2), linked + recent)
         where mapping_id = p_mapping;
        perform set_config('ferry.fuse_tripped', 'on', true);
    end if;
    return allowed;
end
$fn$;

-- ferry.fuse_trip(mapping, reason): trips the fuse without a deletion (a reconcile whose
-- listing came back far shorter than the links: an outage or a token that lost its rights).
create or replace function ferry.fuse_trip(p_mapping integer, p_reason text)
returns void
language sql
as $fn$
    update ferry.delete_fuses set tripped_at = now(), reason = p_reason
     where mapping_id = p_mapping and enabled and tripped_at is null;
$fn$;

-- ferry.fuse_listing(mapping, listed, gone): a reconcile about to delete `gone` linked rows
-- because its listing of `listed` records lacks them. Past the fuse's threshold the fuse trips
-- before anything is deleted (an empty page from an app outage, a token that lost its rights):
-- returns true, and every one of those deletions is then held.
create or replace function ferry.fuse_listing(p_mapping integer, p_listed bigint, p_gone bigint)
returns boolean
language plpgsql
as $fn$
declare
    f      ferry.delete_fuses;
    linked bigint;
begin
    select * into f from ferry.delete_fuses where mapping_id = p_mapping;
    if not found or not f.enabled or p_gone = 0 then
        return false;
    end if;
    select count(*) into linked from ferry.links where mapping_id = p_mapping and remote_id is not null;
    if p_gone > f.max_rows and p_gone > f.max_share * linked then
        perform ferry.fuse_trip(p_mapping,
            format('reconcile listed %s records of %s linked: %s hub rows would be deleted', p_listed, linked, p_gone));
        return true;
    end if;
    return false;
end
$fn$;

-- ferry.fuse_hub_deletes(mapping, keys, remote ids): the outbound worker's archives of rows
-- deleted in the hub. Returns {"go": [keys to archive now], "held": n, "tripped": bool}: a
-- released held deletion goes; of the rest, what the fuse allows goes and the others are held.
create or replace function ferry.fuse_hub_deletes(p_mapping integer, p_keys bigint[], p_remote_ids text[])
returns jsonb
language plpgsql
as $fn$
declare
    released bigint[];
    rest     bigint[];
    tbl      text;
    key_col  text;
    queued   integer;
    allowed  integer;
begin
    select coalesce(array_agg(row_key), '{}') into released
      from ferry.deletes_held
     where mapping_id = p_mapping and side = 'hub' and released_at is not null and row_key = any(p_keys);
    select coalesce(array_agg(k order by k), '{}') into rest from unnest(p_keys) k where k <> all(released);
    -- every hub deletion of this mapping queued now (rows gone, records linked), not only
    -- this batch's
    if cardinality(rest) > 0 then
        select format('%I.%I', hub_schema, hub_table), key_column into tbl, key_col
          from ferry.mappings where id = p_mapping;
        execute format(
            'select count(*)::integer from ferry.outbox o
               join ferry.links l on l.mapping_id = o.mapping_id and l.row_key = o.row_key and l.remote_id is not null
              where o.mapping_id = $1 and not exists (select 1 from %s t where t.%I = o.row_key)
                and not exists (select 1 from ferry.deletes_held h
                                 where h.mapping_id = o.mapping_id and h.row_key = o.row_key and h.released_at is not null)',
            tbl, key_col)
          into queued using p_mapping;
    end if;
    allowed := ferry.fuse_allow(p_mapping, 'hub', cardinality(rest), coalesce(queued, 0));
    insert into ferry.deletes_held (mapping_id, side, row_key, remote_id)
    select p_mapping, 'hub', d.k, d.r
      from unnest(p_keys, p_remote_ids) d(k, r)
     where d.k = any(rest[allowed + 1:])
    on conflict (mapping_id, remote_id) do nothing;
    return jsonb_build_object('go', to_jsonb(released || rest[1:allowed]),
                              'held', cardinality(rest) - allowed,
                              'tripped', coalesce(current_setting('ferry.fuse_tripped', true), '') = 'on');
end
$fn$;

-- ferry.release_deletes(mapping): carries out the held deletions: hub rows whose records the
-- app deleted are deleted (or soft-deleted), records whose rows were deleted in the hub are
-- deleted in the app by the workers. The fuse closes again with a fresh window.
create or replace function ferry.release_deletes(p_mapping text)
returns text
language plpgsql
security definer set search_path = pg_catalog, ferry, pg_temp
as $fn$
declare
    m     ferry.mappings := ferry.mapping_named(p_mapping);
    n_app integer;
    n_hub integer;
    done  jsonb;
begin
    perform 1 from ferry.delete_fuses where mapping_id = m.id for update;
    perform set_config('ferry.fuse_released', 'on', true);
    select coalesce(jsonb_agg(jsonb_build_object('id', remote_id, 'deleted', true) order by remote_id), '[]'), count(*)
      into done, n_app
      from ferry.deletes_held where mapping_id = m.id and side = 'app';
    if n_app > 0 then
        perform ferry.apply(m.id, done, false);
        delete from ferry.deletes_held where mapping_id = m.id and side = 'app';
    end if;
    with r as (
        update ferry.deletes_held set released_at = now()
         where mapping_id = m.id and side = 'hub' and released_at is null
        returning row_key)
    insert into ferry.outbox (mapping_id, row_key) select m.id, row_key from r
    on conflict (mapping_id, row_key) do update set seq = ferry.outbox.seq + 1, marked_at = now(),
                                                     attempts = 0, next_attempt_at = now();
    get diagnostics n_hub = row_count;
    perform set_config('ferry.fuse_released', 'off', true);
    update ferry.delete_fuses set tripped_at = null, reason = null where mapping_id = m.id;
    delete from ferry.deletions where mapping_id = m.id;
    perform pg_notify('ferry_control', json_build_object('released', m.name)::text);
    return format('%s: %s hub rows deleted as the app did; %s records being deleted in the app as the hub did; the fuse is closed again',
                  m.name, n_app, n_hub);
end
$fn$;

-- ferry.discard_deletes(mapping): undoes the held deletions, without sending any deletion:
-- hub rows deleted by mistake come back with their row keys, remote ids and links, from the
-- values both sides last agreed on (then the app's current values are fetched); records the
-- app lost are created there again from the hub's values (their new ids written back).
create or replace function ferry.discard_deletes(p_mapping text)
returns text
language plpgsql
security definer set search_path = pg_catalog, ferry, pg_temp
as $fn$
declare
    m     ferry.mappings := ferry.mapping_named(p_mapping);
    tbl   text := format('%I.%I', m.hub_schema, m.hub_table);
    cols  text;
    rcols text;
    keys  bigint[];
    n_hub integer := 0;
    n_app integer := 0;
begin
    perform 1 from ferry.delete_fuses where mapping_id = m.id for update;
    perform set_config('ferry.writer', 'on', true);
    -- rows deleted in the hub: back as they were last synced
    select coalesce(array_agg(h.row_key), '{}') into keys
      from ferry.deletes_held h
     where h.mapping_id = m.id and h.side = 'hub' and h.released_at is null;
    if cardinality(keys) > 0 then
        select string_agg(format('%I', hub_column), ', ' order by position),
               string_agg(format('r.%I', hub_column), ', ' order by position)
          into cols, rcols
          from ferry.fields where mapping_id = m.id;
        execute format(
            'insert into %1$s (%2$I, %3$I, %4$s) overriding system value
             select l.row_key, l.remote_id, %5$s
               from ferry.links l cross join lateral jsonb_populate_record(null::%1$s, l.base) r
              where l.mapping_id = $1 and l.row_key = any($2)
                and not exists (select 1 from %1$s t where t.%2$I = l.row_key)',
            tbl, m.key_column, m.id_column, cols, rcols)
          using m.id, keys;
        get diagnostics n_hub = row_count;
        perform ferry.note_applied(m.id, keys);
        -- the app's current values follow, through the inbox
        insert into ferry.inbox (connection, remote_object, remote_id, kind, payload)
        select m.connection, m.remote_object, l.remote_id, 'changed', jsonb_build_object('discarded_delete', true)
          from ferry.links l where l.mapping_id = m.id and l.row_key = any(keys);
        delete from ferry.deletes_held where mapping_id = m.id and side = 'hub' and row_key = any(keys);
    end if;
    -- records the app deleted: unlinked, then created again by the workers
    select coalesce(array_agg(h.row_key), '{}') into keys
      from ferry.deletes_held h where h.mapping_id = m.id and h.side = 'app';
    if cardinality(keys) > 0 then
        delete from ferry.links where mapping_id = m.id and row_key = any(keys);
        delete from ferry.tombstones t using ferry.deletes_held h
         where h.mapping_id = m.id and h.side = 'app' and t.mapping_id = m.id and t.remote_id = h.remote_id;
        execute format('update %s set %I = null where %I = any($1)', tbl, m.id_column, m.key_column) using keys;
        get diagnostics n_app = row_count;
        insert into ferry.outbox (mapping_id, row_key) select m.id, unnest(keys)
        on conflict (mapping_id, row_key) do update set seq = ferry.outbox.seq + 1, marked_at = now(),
                                                         attempts = 0, next_attempt_at = now();
        delete from ferry.deletes_held where mapping_id = m.id and side = 'app';
    end if;
    if not exists (select 1 from ferry.deletes_held where mapping_id = m.id) then
        update ferry.delete_fuses set tripped_at = null, reason = null where mapping_id = m.id;
        delete from ferry.deletions where mapping_id = m.id;
    end if;
    perform pg_notify('ferry_control', json_build_object('discarded', m.name)::text);
    return format('%s: %s hub rows restored (nothing sent to the app); %s records being created in the app again from the hub; the fuse is closed again',
                  m.name, n_hub, n_app);
end
$fn$;

-- ferry.held_deletes (views/status.sql) lists them with mapping names.
