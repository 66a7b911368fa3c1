-- ferry.apply: the inbound write path. One call applies a batch of remote records to a
-- mapping's hub table, atomically per record under the row lock, and moves each link's base.
--
-- p_records: [{"id": remote id, "updated_at": iso8601|null, "read_at": iso8601|null, "deleted": bool,
--              "values": {hub column: text value | null}}]   (only inbound-capable fields)
-- p_defer_unknown: while creates of this mapping are in flight (links without remote id,
--   renewed at every attempt; one untouched for 10 minutes no longer counts),
--   unknown remote ids are returned in "deferred" instead of inserted: they may be the echo
--   of a create whose link is not committed yet.
--   A record may carry "refused": why it was refused whole before SQL (its id holds a NUL; its
--   "id" is then shown escaped): it is only reported, in "errors".
--   A record may carry "faults": [{"field","type","value","error"}], values set aside before SQL
--   (inbound/screen.rs); a value the column cannot hold is set aside here the same way. Either
--   refuses only that field: the record's other fields apply, the field keeps its hub value and
--   base, and ferry.note_refusals keeps one open dead letter per record and field.
-- Deletions of linked records pass the mass-delete fuse (fuse.sql): past it they are held
-- ("held": how many; "tripped": this call tripped the fuse).
-- returns {"inserted","updated","deleted","unchanged","conflicts","deferred":[ids],"held","tripped",
--          "errors":[{id,error}] (records refused whole), "faults":[{id,field,type}]}
create or replace function ferry.apply(p_mapping integer, p_records jsonb, p_defer_unknown boolean default true)
returns jsonb
language plpgsql
set jit = off   -- short statements: compiling them costs more than it saves (see backfill.sql)
-- the batch's rows are found by key, whatever the (never analyzed) estimates say: a hash join
-- would read the whole hub table for a batch of 1,000
set enable_hashjoin = off
set enable_mergejoin = off
as $fn$
declare
    m          ferry.mappings;
    tbl        text;
    rec        jsonb;
    rid        text;
    l_key      bigint;
    l_base     jsonb;
    l_updated  timestamptz;
    r_updated  timestamptz;
    typed      jsonb;
    cur        jsonb;
    newvals    jsonb;
    newbase    jsonb;
    k          text;
    v          jsonb;
    b          jsonb;
    h          jsonb;
    pol        text;
    verdict    text;
    hub_time   timestamptz;
    push_hub   boolean;
    take_remote boolean;
    pending    boolean;
    new_key    bigint;
    n_ins      integer := 0;
    noted      bigint[] := '{}';
    matched    boolean;
    n_upd      integer := 0;
    n_del      integer := 0;
    n_same     integer := 0;
    n_conf     integer := 0;
    ord        bigint;
    typed_all  jsonb;
    cols       text;
    pcols      text;
    handled    jsonb := '{}';
    fast_upd   bigint[];
    n_fast     integer;
    deferred   jsonb := '[]';
    batch_ids  text[];
    errors     jsonb := '[]';
    faults     jsonb := '[]';
    vals       jsonb;
    del_room   integer := 0;
    n_held     integer := 0;
    hist       boolean := ferry.history_on();
    origin     text;
    rec_origin text;
    rec_hist   jsonb;
    hist_rows  jsonb := '[]';
    conf_id    bigint;
begin
    -- the mirror table's guard trigger lets ferry's own writes through (see mirror.sql)
    perform set_config('ferry.writer', 'on', true);
    select * into m from ferry.mappings where id = p_mapping;
    if not found then
        raise exception 'ferry.apply: mapping % does not exist', p_mapping;
    end if;
    tbl := format('%I.%I', m.hub_schema, m.hub_table);
    -- reference fields carry the app's id of another mapping's record: the hub row key instead
    if exists (select 1 from ferry.fields where mapping_id = p_mapping and references_mapping is not null) then
        p_records := ferry.resolve_references(p_mapping, p_records);
    end if;
    -- history's origin of these changes: the app, the path they came by (set by the caller)
    -- and, per record, what the app said about its source
    origin := m.connection || ' ' || coalesce(nullif(current_setting('ferry.origin', true), ''), 'sync');
    select exists (select 1 from ferry.links
                    where mapping_id = p_mapping and remote_id is null
                      and created_at > now() - interval '10 minutes')
      into pending;

    -- one apply at a time per remote record, whichever worker or process runs it: two applies
    -- of a record new to the hub would both insert it. Taken up front in a fixed order, so two
    -- batches never wait on each other in a circle.
    -- The batch's links are looked up by the index, whatever the planner thinks of the links
    -- table: by `= any(batch_ids)`, or per record in a lateral subquery kept apart by `offset 0`.
    -- A plain join against jsonb_array_elements was planned, while the table's statistics still
    -- said a few rows (during and after a backfill), as every link of the mapping tested
    -- against every record: 0.5–1.6 s a batch of 1,000 records on 6,000 links (auto_explain).
    batch_ids := array(select distinct value ->> 'id' from jsonb_array_elements(p_records) order by 1);
    perform pg_advisory_xact_lock(hashtextextended(p_mapping::text || ':' || id, 0))
       from unnest(batch_ids) with ordinality u(id, n)
      order by n;

    -- lock the batch's links up front, in row order: outbound commits lock them in the same
    -- order, so the two never deadlock
    perform 1 from ferry.links
      where mapping_id = p_mapping
        and remote_id = any(batch_ids)
      order by row_key
        for update;
    -- a record whose row an outbound worker is writing to this app right now (its mark's claim,
    -- ferry.mark_lock, is held) may be the echo of that write, seen before the worker recorded
    -- it: it would look like the app's own change (or a conflict) against the old base. It is
    -- held back like an unknown record during a create, and fetched again once the write is
    -- recorded. (Asynchronous writes — bulk jobs — make that window seconds long.)
    -- So is a record read (its "read_at", the hub's clock when the read began) before a write
    -- of it was recorded: the read may show the app before that write, and the app's update
    -- time cannot tell (a write that changed nothing leaves the record's old time).
    -- And a "strict" record (a state a webhook event carried, not read now) that is not
    -- strictly newer than the state applied: in whole seconds an equal time may be an older
    -- state. Its event is tried again, then by fetching the record.
    if p_defer_unknown then
        select coalesce(jsonb_agg(distinct l.remote_id), '[]') into deferred
          from (select value ->> 'id' as id, (value ->> 'read_at')::timestamptz as read_at,
                       coalesce((value ->> 'strict')::boolean, false) as strict,
                       (value ->> 'updated_at')::timestamptz as updated_at
                  from jsonb_array_elements(p_records)) e
         cross join lateral (select l.remote_id, l.row_key, l.written_at, l.remote_updated_at
                               from ferry.links l
                              where l.mapping_id = p_mapping and l.remote_id = e.id
                             offset 0) l
         where (l.written_at > e.read_at or ferry.mark_claimed(p_mapping, l.row_key)
                or (e.strict and l.remote_updated_at >= e.updated_at));
        if deferred <> '[]' then
            p_records := coalesce((select jsonb_agg(e.value order by e.n)
                                     from jsonb_array_elements(p_records) with ordinality e(value, n)
                                    where not deferred ? (e.value ->> 'id')), '[]');
        end if;
    end if;
    -- and their hub rows, in key order: in N-way sync another mapping's batch (or an outbound
    -- commit) locks rows of the same table, and the per-record loop below takes them in the
    -- batch's order; a cycle would make PostgreSQL cancel one of the waiters, possibly a
    -- person's own update in psql. A table only this mapping syncs needs none of it: its
    -- outbound commits take this mapping's links first, which the lock above already orders.
    if exists (select 1 from ferry.mappings o
                where o.hub_schema = m.hub_schema and o.hub_table = m.hub_table and o.id <> p_mapping) then
    execute format(
        'select 1 from %s t
          where t.%I in (select l.row_key from ferry.links l
                          where l.mapping_id = $1
                            and l.remote_id = any($2))
          order by t.%I for update of t', tbl, m.key_column, m.key_column)
      using p_mapping, batch_ids;
    end if;

    -- deletions of linked records ask the mass-delete fuse (fuse.sql) how many may be carried
    -- out; the others are held in ferry.deletes_held for an operator
    if exists (select 1 from jsonb_array_elements(p_records) e where coalesce((e.value ->> 'deleted')::boolean, false)) then
        del_room := ferry.fuse_allow(p_mapping, 'app',
            (select count(*)::integer from ferry.links l
              where l.mapping_id = p_mapping
                and l.remote_id = any(array(select e.value ->> 'id' from jsonb_array_elements(p_records) e
                                             where coalesce((e.value ->> 'deleted')::boolean, false)))));
    end if;

    -- the batch's values cast to the column types in one statement (a dynamic statement is
    -- planned at every execution); a batch with a value that does not cast falls back to the
    -- per-record statement below, which refuses that record alone
    begin
        execute format(
            'select jsonb_object_agg(e.n::text, to_jsonb(jsonb_populate_record(null::%s, e.value -> ''values'')))
               from jsonb_array_elements($1) with ordinality e(value, n)
              where jsonb_typeof(e.value -> ''values'') = ''object''', tbl)
          into typed_all using p_records;
    exception
        when deadlock_detected or serialization_failure or lock_not_available or query_canceled then
            raise;
        when others then
            typed_all := null;
    end;

    -- the common case set-based: a linked record, not deleted, not older than the state applied,
    -- whose row is there, listed once in the batch, with no field changed on both sides since
    -- the base. Its changed fields are written in one update of all such rows, its link's base
    -- moves to the remote values; the loop below takes every other record, one at a time.
    -- Measured in psql: 1,000 updates 142–157 ms in the loop alone (~150 µs a record: a
    -- PL/pgSQL step per field, two dynamic statements per record).
    -- A statement error (a constraint of the hub table refusing a value) undoes it and leaves
    -- every record to the loop, which refuses only the records at fault.
    if typed_all is not null then
        begin
            select string_agg(format('%I', hub_column), ', ' order by position),
                   string_agg(format('p.%I', hub_column), ', ' order by position)
              into cols, pcols
              from ferry.fields where mapping_id = p_mapping and direction <> 'outbound';
            execute format(
                'with b as materialized (
                     select e.n, l.row_key, l.base, (e.value ->> ''updated_at'')::timestamptz as r_upd,
                            e.value -> ''values'' as vals, $3 -> e.n::text as typed,
                            e.value ->> ''id'' as rid, e.value ->> ''source'' as source
                       from (select value, ordinality as n, count(*) over (partition by value ->> ''id'') as times
                               from jsonb_array_elements($1) with ordinality) e
                      cross join lateral (select * from ferry.links l
                                           where l.mapping_id = $2 and l.remote_id = e.value ->> ''id''
                                          offset 0) l
                      where e.times = 1
                        and not coalesce((e.value ->> ''deleted'')::boolean, false)
                        and $3 ? e.n::text
                        and not coalesce((e.value ->> ''updated_at'')::timestamptz < l.remote_updated_at, false))
                 , cur as materialized (
                     select b.*, to_jsonb(t) as h
                       from b join %1$s t on t.%2$I = b.row_key
                      order by b.row_key
                        for update of t)
                 , d as materialized (
                     select c.n, c.row_key, c.r_upd, x.typed, x.conflict, x.newvals, c.rid, c.source, c.h
                       from cur c
                      cross join lateral (
                          select coalesce(bool_or(f.has_b and f.v is distinct from f.b and f.h is distinct from f.b
                                                  and f.h is distinct from f.v), false) as conflict,
                                 coalesce(jsonb_object_agg(f.k, f.typed) filter (
                                     where not (f.has_b and f.v is not distinct from f.b) and f.h is distinct from f.v), ''{}'') as newvals,
                                 coalesce(jsonb_object_agg(f.k, f.typed), ''{}'') as typed
                            from (select k, c.typed -> k as typed, nullif(c.typed -> k, ''null'') as v, c.base ? k as has_b,
                                         nullif(c.base -> k, ''null'') as b, nullif(c.h -> k, ''null'') as h
                                    from jsonb_object_keys(c.vals) k) f) x)
                 , upd as (
                     update %1$s t set (%3$s) = (select %4$s from jsonb_populate_record(t, d.newvals) p)
                       from d
                      where t.%2$I = d.row_key and not d.conflict and d.newvals <> ''{}'')
                 , lk as (
                     update ferry.links l
                        set base = l.base || d.typed, remote_updated_at = coalesce(d.r_upd, l.remote_updated_at), synced_at = now()
                       from d
                      where l.mapping_id = $2 and l.row_key = d.row_key and not d.conflict)
                 , hist as (
                     insert into ferry.field_changes (mapping_id, row_key, remote_id, field, old_value, new_value,
                                                      direction, operation, origin)
                     select $2, d.row_key, d.rid, f.key, nullif(d.h -> f.key, ''null''), f.value,
                            ''app_to_hub'', ''update'', $4 || coalesce('' ('' || d.source || '')'', '''')
                       from d cross join lateral jsonb_each(d.newvals) f
                      where $5 and not d.conflict)
                 select coalesce(jsonb_object_agg(d.n::text, true) filter (where not d.conflict), ''{}''),
                        coalesce(array_agg(d.row_key) filter (where not d.conflict and d.newvals <> ''{}''), ''{}''),
                        count(*) filter (where not d.conflict)
                   from d',
                tbl, m.key_column, cols, pcols)
              into handled, fast_upd, n_fast
              using p_records, p_mapping, typed_all, origin, hist;
            n_upd := n_upd + cardinality(fast_upd);
            n_same := n_same + n_fast - cardinality(fast_upd);
            noted := noted || fast_upd;   -- these rows now equal their base for the fields written
        exception
            when deadlock_detected or serialization_failure or lock_not_available or query_canceled then
                raise;
            when others then
                handled := '{}';
        end;
    end if;

    for rec, ord in select value, ordinality from jsonb_array_elements(p_records) with ordinality loop
        if handled ? ord::text then
            continue;
        end if;
        rid := rec ->> 'id';
        matched := false;
        rec_hist := '[]';
        rec_origin := origin || coalesce(' (' || (rec ->> 'source') || ')', '');
        -- refused before SQL as a whole (an id PostgreSQL cannot hold: inbound/screen.rs)
        if rec ? 'refused' then
            errors := errors || jsonb_build_object('id', rid, 'error', rec ->> 'refused');
            continue;
        end if;
        begin
            select row_key, base, remote_updated_at into l_key, l_base, l_updated
              from ferry.links where mapping_id = p_mapping and remote_id = rid
               for update;
            r_updated := (rec ->> 'updated_at')::timestamptz;

            if coalesce((rec ->> 'deleted')::boolean, false) then
                if l_key is not null and del_room <= 0 then
                    insert into ferry.deletes_held (mapping_id, side, row_key, remote_id)
                    values (p_mapping, 'app', l_key, rid)
                    on conflict (mapping_id, remote_id) do nothing;
                    n_held := n_held + 1;
                    continue;
                end if;
                if l_key is not null then
                    del_room := del_room - 1;
                    if m.on_remote_delete = 'unlink' then
                        -- the row stays for the other apps; this app's id goes, and the row is
                        -- not created there again (ferry.detached) until a record links anew
                        execute format('update %s set %I = null where %I = $1', tbl, m.id_column, m.key_column)
                          using l_key;
                        insert into ferry.detached (mapping_id, row_key, remote_id)
                        values (p_mapping, l_key, rid)
                        on conflict (mapping_id, row_key) do update set remote_id = excluded.remote_id, at = now();
                    elsif m.soft_delete then
                        execute format('update %s set _deleted_at = now() where %I = $1', tbl, m.key_column)
                          using l_key;
                    else
                        execute format('delete from %s where %I = $1', tbl, m.key_column) using l_key;
                    end if;
                    delete from ferry.links where mapping_id = p_mapping and row_key = l_key;
                    -- this mapping's own change: its mark would diff to nothing. Noted all the
                    -- same so the listener knows the row had another writer when a second
                    -- mapping's apply of it shares the transaction: that mapping's mark stays
                    -- and carries the deletion to its app.
                    noted := noted || l_key;
                    if hist then
                        hist_rows := hist_rows || jsonb_build_object('k', l_key, 'r', rid, 'f', '*', 'op', 'delete', 'o', rec_origin);
                    end if;
                    -- remembered, so a state of the record read before its deletion and
                    -- applied after it does not bring the row back
                    insert into ferry.tombstones (mapping_id, remote_id, deleted_at)
                    values (p_mapping, rid, coalesce(r_updated, now()))
                    on conflict (mapping_id, remote_id) do update set deleted_at = greatest(tombstones.deleted_at, excluded.deleted_at);
                    n_del := n_del + 1;
                else
                    -- not in the hub (yet): remembered all the same, so a backfill page or a
                    -- poll that read the record before its deletion does not bring it in
                    insert into ferry.tombstones (mapping_id, remote_id, deleted_at)
                    values (p_mapping, rid, coalesce(r_updated, now()))
                    on conflict (mapping_id, remote_id) do update set deleted_at = greatest(tombstones.deleted_at, excluded.deleted_at);
                    n_same := n_same + 1;
                end if;
                continue;
            end if;

            -- remote text values cast to the column types, then back to jsonb: the same
            -- normal form to_jsonb(row) gives, so values compare exactly with rows and bases
            typed := typed_all -> ord::text;
            if typed is null then
                begin
                    execute format('select to_jsonb(jsonb_populate_record(null::%s, $1))', tbl)
                      into typed using rec -> 'values';
                exception
                    when deadlock_detected or serialization_failure or lock_not_available or query_canceled then
                        raise;
                    when others then
                        -- a value the column cannot hold refuses only itself: each field is
                        -- cast alone, the ones at fault become faults (one dead letter per
                        -- record and field) and keep their hub value, the rest are applied
                        vals := '{}';
                        for k, v in select key, value from jsonb_each(rec -> 'values') loop
                            begin
                                execute format('select to_jsonb(jsonb_populate_record(null::%s, $1))', tbl)
                                  into typed using jsonb_build_object(k, v);
                                vals := vals || jsonb_build_object(k, v);
                            exception
                                when deadlock_detected or serialization_failure or lock_not_available or query_canceled then
                                    raise;
                                when others then
                                    faults := faults || jsonb_build_object(
                                        'id', rid, 'field', k,
                                        'type', (select format_type(a.atttypid, a.atttypmod) from pg_attribute a
                                                  where a.attrelid = tbl::regclass and a.attname = k),
                                        'value', case when length(v #>> '{}') > 120 then left(v #>> '{}', 120) || '…'
                                                      else v #>> '{}' end,
                                        'error', left(sqlerrm, 300));
                            end;
                        end loop;
                        rec := jsonb_set(rec, '{values}', vals);
                        execute format('select to_jsonb(jsonb_populate_record(null::%s, $1))', tbl)
                          into typed using vals;
                end;
            end if;
            select coalesce(jsonb_object_agg(key, typed -> key), '{}')
              into typed from jsonb_object_keys(rec -> 'values') as key;

            if l_key is null and exists (select 1 from ferry.tombstones ts
                                          where ts.mapping_id = p_mapping and ts.remote_id = rid
                                            and (r_updated is null or r_updated <= ts.deleted_at)) then
                n_same := n_same + 1;   -- a state from before the record's deletion
                continue;
            end if;

            if l_key is null and m.match_key is not null and typed ->> m.match_key is not null then
                -- first sync: an unlinked hub row (no remote id, no link) with the same match key
                -- value (any case) is this record; link it and merge below with an empty base
                -- (the remote values are taken, and the outbound side then finds nothing to push)
                execute format(
                    'select t.%I from %s t
                      where lower(t.%I::text) = lower($1) and t.%I is null
                        and not exists (select 1 from ferry.links l where l.mapping_id = $2 and l.row_key = t.%I)
                      order by t.%I limit 1 for update of t',
                    m.key_column, tbl, m.match_key, m.id_column, m.key_column, m.key_column)
                  into l_key using typed ->> m.match_key, p_mapping;
                if l_key is not null then
                    insert into ferry.links (mapping_id, row_key, remote_id, remote_updated_at, base)
                    values (p_mapping, l_key, rid, null, '{}');
                    delete from ferry.detached where mapping_id = p_mapping and row_key = l_key;
                    execute format('update %s set %I = $1 where %I = $2', tbl, m.id_column, m.key_column)
                      using rid, l_key;
                    l_base := '{}';
                    matched := true;   -- its hub-only values still have to go out: no note
                    l_updated := null;
                end if;
            end if;

            if l_key is null then
                if pending and p_defer_unknown then
                    deferred := deferred || to_jsonb(rid);
                    continue;
                end if;
                begin
                    execute format(
                        'insert into %s as t (%s%I) select %s$2 from jsonb_populate_record(null::%s, $1) r returning t.%I',
                        tbl,
                        (select coalesce(string_agg(format('%I, ', key), ''), '') from jsonb_object_keys(typed) key),
                        m.id_column,
                        (select coalesce(string_agg(format('r.%I, ', key), ''), '') from jsonb_object_keys(typed) key),
                        tbl, m.key_column)
                      into new_key using typed, rid;
                    insert into ferry.links (mapping_id, row_key, remote_id, remote_updated_at, base)
                    values (p_mapping, new_key, rid, r_updated, typed);
                    -- a backfill's first copy of a record is not a change (see backfill.sql)
                    if hist and current_setting('ferry.origin', true) is distinct from 'backfill' then
                        hist_rows := hist_rows || jsonb_build_object('k', new_key, 'r', rid, 'f', '*', 'n', typed, 'op', 'create', 'o', rec_origin);
                    end if;
                    n_ins := n_ins + 1;
                    noted := noted || new_key;
                    continue;
                exception when unique_violation then
                    -- a backfill batch (no per-record lock) inserted the record meanwhile and
                    -- has committed: merge into its row like into any known record
                    select row_key, base, remote_updated_at into l_key, l_base, l_updated
                      from ferry.links where mapping_id = p_mapping and remote_id = rid
                       for update;
                    if l_key is null then
                        raise;
                    end if;
                end;
            end if;

            if l_updated is not null and r_updated is not null and r_updated < l_updated then
                n_same := n_same + 1;   -- an older version than the one already applied
                continue;
            end if;

            execute format('select to_jsonb(t) from %s t where %I = $1 for update', tbl, m.key_column)
              into cur using l_key;
            if cur is null then
                n_same := n_same + 1;   -- hub row deleted; the outbound worker archives it
                continue;
            end if;

            newvals := '{}';
            newbase := coalesce(l_base, '{}');
            push_hub := false;
            for k, v in select key, value from jsonb_each(typed) loop
                conf_id := null;
                v := nullif(v, 'null'::jsonb);
                b := nullif(l_base -> k, 'null'::jsonb);
                h := nullif(cur -> k, 'null'::jsonb);
                if v is not distinct from b and l_base ? k then
                    continue;          -- remote did not change this field
                end if;
                take_remote := true;
                if l_base ? k and h is distinct from b and h is distinct from v then
                    -- both sides changed the field since the base: the policy decides, here,
                    -- under the row lock
                    select coalesce(f.conflict_policy, m.conflict_policy) into pol
                      from ferry.fields f where f.mapping_id = p_mapping and f.hub_column = k;
                    if pol = 'last_write_wins' then
                        -- the user's write time of this column (the guard trigger stamps it)
                        -- against the app's update time of the record; a tie goes to the app
                        hub_time := (nullif(cur -> '_ferry_modified', 'null') ->> k)::timestamptz;
                        take_remote := hub_time is null or r_updated is null or r_updated >= hub_time;
                    else
                        take_remote := pol = 'remote_wins';
                    end if;
                    verdict := case when take_remote then 'remote' when pol = 'manual' then 'held' else 'hub' end;
                    if verdict = 'held' then
                        -- one open conflict per field: a newer remote value replaces the older
                        update ferry.conflicts set resolved_at = now(), resolved_by = 'superseded'
                         where mapping_id = p_mapping and row_key = l_key and field = k
                           and decision = 'held' and resolved_at is null;
                    elsif verdict = 'hub' then
                        push_hub := true;   -- the hub value goes out again, over the app's
                    end if;
                    insert into ferry.conflicts
                        (mapping_id, row_key, field, hub_value, remote_value, base_value, policy, decision)
                    values (p_mapping, l_key, k, h, v, b, pol, verdict)
                    returning id into conf_id;
                    n_conf := n_conf + 1;
                end if;
                if take_remote and h is distinct from v then
                    newvals := newvals || jsonb_build_object(k, coalesce(v, 'null'::jsonb));
                    if hist then
                        rec_hist := rec_hist || jsonb_build_object('k', l_key, 'r', rid, 'f', k, 'old', h,
                                                                   'n', coalesce(v, 'null'::jsonb), 'op', 'update',
                                                                   'o', rec_origin, 'c', conf_id);
                    end if;
                end if;
                newbase := newbase || jsonb_build_object(k, coalesce(v, 'null'::jsonb));
            end loop;

            if push_hub then
                -- the base now holds the app's value, so the worker finds the hub's to push
                insert into ferry.outbox (mapping_id, row_key) values (p_mapping, l_key)
                on conflict (mapping_id, row_key) do update set seq = ferry.outbox.seq + 1, marked_at = now();
            end if;
            if newvals <> '{}' then
                execute format('update %s t set %s from jsonb_populate_record(null::%s, $1) r where t.%I = $2',
                    tbl,
                    (select string_agg(format('%I = r.%I', key, key), ', ') from jsonb_object_keys(newvals) key),
                    tbl, m.key_column)
                  using newvals, l_key;
                if not matched then
                    noted := noted || l_key;   -- the row now equals its base for these fields
                end if;
                n_upd := n_upd + 1;
            else
                n_same := n_same + 1;
            end if;
            update ferry.links
               set base = newbase,
                   remote_updated_at = coalesce(r_updated, remote_updated_at),
                   synced_at = now()
             where mapping_id = p_mapping and row_key = l_key;
            hist_rows := hist_rows || rec_hist;
        exception
            when deadlock_detected or serialization_failure or lock_not_available or query_canceled then
                raise;   -- the whole batch is retried; never a per-record verdict
            when others then
                errors := errors || jsonb_build_object('id', rid, 'error', sqlerrm);
        end;
    end loop;

    -- values refused before SQL (a NUL character, over the size limit: see inbound/screen.rs)
    -- travel with their record as "faults"
    select faults || coalesce(jsonb_agg(f || jsonb_build_object('id', r ->> 'id')), '[]') into faults
      from jsonb_array_elements(p_records) r, jsonb_array_elements(r -> 'faults') f
     where jsonb_typeof(r -> 'faults') = 'array';
    -- dead letters: one per record and field, closed by the next good value; the lookup of
    -- open ones is an index probe, so a clean batch of a clean mapping pays nothing more
    if faults <> '[]' or errors <> '[]'
       or exists (select 1 from ferry.dead_letters
                   where mapping_id = p_mapping and direction = 'inbound'
                     and retried_at is null and resolved_at is null) then
        perform ferry.note_refusals(p_mapping, p_records,
                                    errors || coalesce((select jsonb_agg(jsonb_build_object('id', d)) from jsonb_array_elements_text(deferred) d), '[]'),
                                    faults);
    end if;

    if hist and hist_rows <> '[]' then
        insert into ferry.field_changes (mapping_id, row_key, remote_id, field, old_value, new_value,
                                         direction, operation, origin, conflict_id)
        select p_mapping, (x ->> 'k')::bigint, x ->> 'r', x ->> 'f', x -> 'old', x -> 'n',
               'app_to_hub', x ->> 'op', x ->> 'o', (x ->> 'c')::bigint
          from jsonb_array_elements(hist_rows) x;
    end if;

    -- records that referenced one of these before it arrived are read again (asked only when
    -- a field references this mapping: the search is planned at every call, ~2 ms)
    if n_ins + n_upd > 0
       and exists (select 1 from ferry.fields fl join ferry.mappings r on r.name = fl.references_mapping
                    where r.id = p_mapping) then
        perform ferry.requeue_references(p_mapping);
    end if;
    perform ferry.note_applied(p_mapping, noted);
    -- at most once a second, so concurrent batches do not queue on the mapping's row; a
    -- backfill records it with its page cursor, after its turn to commit (no row lock before)
    if n_ins + n_upd + n_del > 0 and current_setting('ferry.progress_by_caller', true) is distinct from 'on' then
        update ferry.mapping_progress set last_inbound_at = now()
         where mapping_id = p_mapping and (last_inbound_at is null or last_inbound_at < now() - interval '1 second');
    end if;
    return jsonb_build_object('inserted', n_ins, 'updated', n_upd, 'deleted', n_del,
                              'unchanged', n_same, 'conflicts', n_conf,
                              'deferred', deferred, 'errors', errors,
                              'held', n_held, 'tripped', coalesce(current_setting('ferry.fuse_tripped', true), '') = 'on',
                              'faults', (select coalesce(jsonb_agg(f - 'value' - 'error'), '[]') from jsonb_array_elements(faults) f));
end
$fn$;
