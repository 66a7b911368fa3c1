-- ferry.backfill_merge(mapping): merges one page of remote records, staged by the backfill in
-- the session's pg_temp.ferry_stage (remote_id, updated_at, rec) with COPY, into the mapping's
-- hub table. Records the hub has never seen (no link, no hub row with their match key value,
-- no create in flight, no deletion applied, no value set aside) are inserted set-based, with their links, in one
-- statement; every other record goes through ferry.apply, field by field under the row lock.
-- The batch first takes ferry.apply's per-record locks, in its order, so an apply (a webhook)
-- or the previous batch handling one of these records finishes before the fresh records are
-- chosen. Should a record still be inserted meanwhile by something else, the insert's unique
-- violation sends the batch round again and ferry.apply merges that record below; an apply
-- whose insert loses such a race merges into the existing row (see apply.sql).
-- The first copy of a record is not a change: ferry.history does not record these inserts (a
-- row's story starts with its link, ferry.links.created_at); records merged by ferry.apply are.
-- Returns the same summary as ferry.apply. It never locks ferry.mapping_progress (the caller
-- records last_inbound_at with its cursor): the backfill merges several batches at once and
-- each waits, in ferry, for the commit of the one before it.
--
-- One statement per attempt decides which records are fresh (per-record probes of the match key
-- and tombstones), inserts them with their links and collects the rest for ferry.apply: no
-- second pass over the staged records and no temporary set of fresh ids (which cost ~4 µs a
-- record). Probes are scalar subqueries, primary key lookups whatever the statistics say; the
-- staging table is never analyzed, and with its default estimate the planner hashed the whole
-- hub table and links for every page (measured: 22 ms a page of 100 at 50,000 rows, 7 ms with
-- the loops). A record linked already is found by the hub insert's unique violation on the
-- remote id column (the statement then runs again, probing the links: `on conflict` would find
-- it without an error, but its speculative insertion cost 3 of 18 ms a 1,000-record merge); the
-- links are probed from the first attempt only when the page's first record is linked (a
-- backfill over a synced hub).
-- The match key is probed among unlinked rows only (a partial index the backfill never writes).
create or replace function ferry.backfill_merge(p_mapping integer)
returns jsonb
language plpgsql
set enable_hashjoin = off
set enable_mergejoin = off
-- JIT compiled this statement's expressions for ~38 ms a batch once the hub table outgrew its
-- statistics (estimates cross jit_above_cost): for any caller, not only ferry's sessions
set jit = off
as $fn$
declare
    m        ferry.mappings;
    tbl      text;
    cols     text;
    rcols    text;
    fcols    text;
    pairs    text;
    keys     text[];
    seq      text;
    stale    text := '';
    matching text := '';
    fresh    integer := 0;
    ins_keys bigint[] := '{}';
    rest     jsonb;
    outcome  jsonb;
    careful  boolean := true;
    probe    text := '';      -- the links probe (`linked`) or none
    linked   constant text := 'and (select l.row_key from ferry.links l where l.mapping_id = $1 and l.remote_id = s.remote_id) is null';
    all_text boolean;
begin
    perform set_config('ferry.writer', 'on', true);   -- past the mirror table's guard trigger
    select * into m from ferry.mappings where id = p_mapping;
    if not found then
        raise exception 'ferry.backfill_merge: mapping % does not exist', p_mapping;
    end if;
    tbl := format('%I.%I', m.hub_schema, m.hub_table);

    -- the per-record locks of ferry.apply, for every staged record, taken up front in its order:
    -- an apply (a webhook) of some of these records then either finishes before this batch
    -- inserts anything or waits until it commits, and the two never wait on each other in a
    -- circle (ferry.apply below takes the same locks again, which costs nothing)
    perform pg_advisory_xact_lock(hashtextextended(p_mapping::text || ':' || s.remote_id, 0))
       from (select remote_id from pg_temp.ferry_stage order by 1) s;

    -- a create in flight may be one of these records, and a remote id column without a
    -- unique index cannot arbitrate concurrent inserts: everything takes the careful path
    -- (reference fields, too: ferry.apply translates their ids)
    if not exists (select 1 from ferry.links
                    where mapping_id = p_mapping and remote_id is null
                      and created_at > now() - interval '10 minutes')
       and not exists (select 1 from ferry.fields where mapping_id = p_mapping and references_mapping is not null)
       and exists (select 1 from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
                    where i.indrelid = tbl::regclass and i.indisunique and i.indnatts = 1 and i.indpred is null
                      and a.attname = m.id_column) then
        careful := false;
        -- a record deleted in the app whose deletion was applied before this page: the
        -- page's state is older (ferry.apply compares it with the tombstone)
        if exists (select 1 from ferry.tombstones where mapping_id = p_mapping) then
            stale := 'and not exists (select 1 from ferry.tombstones ts where ts.mapping_id = $1 and ts.remote_id = s.remote_id)';
        end if;
        if m.match_key is not null then
            matching := format(
                'and (select 1 from %s t where lower(t.%I::text) = lower(s.rec -> ''values'' ->> %L) and t.%I is null limit 1) is null',
                tbl, m.match_key, m.match_key, m.id_column);
        end if;
        -- a backfill over rows synced already: probe the links from the start
        if exists (select 1 from ferry.links l where l.mapping_id = p_mapping
                      and l.remote_id = (select min(remote_id) from pg_temp.ferry_stage)) then
            probe := linked;
        end if;
        -- a staged record carries exactly the mapping's inbound columns (apply.rs, StagedValues)
        -- as strings or nulls: when every one is text, its values are its base as they are
        select bool_and(format_type(a.atttypid, null) in ('text', 'character varying')) into all_text
          from ferry.fields f join pg_attribute a on a.attrelid = tbl::regclass and a.attname = f.hub_column
         where f.mapping_id = p_mapping and f.direction <> 'outbound';
        select string_agg(format('%I', hub_column), ', ' order by position),
               string_agg(format('src.%I', 'f' || position), ', ' order by position),
               string_agg(format('r.%I as %I', hub_column, 'f' || position), ', ' order by position),
               array_agg(hub_column order by position)
          into cols, rcols, fcols, keys
          from ferry.fields where mapping_id = p_mapping and direction <> 'outbound';
        -- jsonb_build_object takes at most 50 pairs: larger mappings concatenate several
        select string_agg(chunk, ' || ') into pairs
          from (select 'jsonb_build_object(' || string_agg(format('%L, src.%I', c, 'f' || p), ', ' order by n) || ')' as chunk
                  from (select hub_column as c, position as p, row_number() over (order by position) - 1 as n
                          from ferry.fields where mapping_id = p_mapping and direction <> 'outbound') f
                 group by n / 50) chunks;
        seq := pg_get_serial_sequence(tbl, m.key_column);
        if seq is null then
            raise exception 'ferry.backfill_merge: the key column %.% of % has no sequence or identity: ferry cannot number the rows it creates',
                            m.hub_table, m.key_column, tbl;
        end if;
    end if;

    -- fresh records: no unlinked hub row with their match key value, no deletion applied, and
    -- (found by the unique remote id column) no hub row with their remote id. Row keys are
    -- drawn before the inserts, so the hub rows and their links are written from one
    -- materialized set; the base is built from the typed values (a record that lacks some
    -- properties takes only those it carries). A record linked already, or one an apply (a
    -- webhook) or the previous batch inserted meanwhile, fails the hub insert; the statement is
    -- then undone and runs again with the links probed, now seeing the records linked since
    -- (those are merged by ferry.apply below); the third time everything goes to ferry.apply.
    for attempt in 1..3 loop
        exit when careful;
        begin
            execute format(
                'with cand as materialized (
                     select s.remote_id, s.updated_at, s.rec,
                            (not coalesce((s.rec ->> ''deleted'')::boolean, false) and not s.rec ? ''faults'' and not s.rec ? ''refused''
                             %10$s %8$s %9$s) as fresh
                       from pg_temp.ferry_stage s)
                 , src as materialized (
                     select nextval(%6$L::regclass) as row_key, c.remote_id, c.updated_at, c.rec -> ''values'' as v, %11$s
                       from cand c
                      cross join lateral jsonb_populate_record(null::%1$s, c.rec -> ''values'') r
                      where c.fresh)
                 , ins as (
                     insert into %1$s (%5$I, %2$s, %3$I) overriding system value
                     select src.row_key, %4$s, src.remote_id from src)
                 , lk as (
                     insert into ferry.links (mapping_id, row_key, remote_id, remote_updated_at, base)
                     select $1, src.row_key, src.remote_id, src.updated_at,
                            case when src.v ?& $2 then %12$s
                                 else (select coalesce(jsonb_object_agg(e.key, e.value), ''{}'')
                                         from jsonb_each(%7$s) e where src.v ? e.key) end
                       from src)
                 select (select count(*) from src), (select coalesce(array_agg(row_key), ''{}'') from src),
                        (select coalesce(jsonb_agg(c.rec), ''[]'') from cand c where not c.fresh)',
                tbl, cols, m.id_column, rcols, m.key_column, seq, pairs, matching, stale, probe, fcols,
                case when all_text then 'src.v' else pairs end)
              into fresh, ins_keys, rest
              using p_mapping, keys;
            exit;
        exception
            when unique_violation then
                fresh := 0;
                ins_keys := '{}';
                rest := null;
                careful := attempt = 3;
                probe := linked;
            when deadlock_detected or serialization_failure or lock_not_available or query_canceled then
                raise;
            when others then
                -- a value the hub cannot hold: ferry.apply takes the page and refuses only
                -- that value (a dead letter per record and field)
                fresh := 0;
                ins_keys := '{}';
                rest := null;
                careful := true;
        end;
    end loop;
    if careful then
        select coalesce(jsonb_agg(s.rec), '[]') into rest from pg_temp.ferry_stage s;
    end if;
    perform ferry.note_applied(p_mapping, ins_keys);

    if jsonb_array_length(rest) > 0 then
        -- the caller records last_inbound_at with its cursor: backfill batches merge
        -- at once and commit in order, so none may lock the progress row before its turn
        perform set_config('ferry.progress_by_caller', 'on', true);
        outcome := ferry.apply(p_mapping, rest, true);
    else
        outcome := jsonb_build_object('inserted', 0, 'updated', 0, 'deleted', 0, 'unchanged', 0,
                                      'conflicts', 0, 'deferred', '[]'::jsonb, 'errors', '[]'::jsonb);
    end if;
    return jsonb_set(outcome, '{inserted}', to_jsonb((outcome ->> 'inserted')::integer + fresh));
end
$fn$;
