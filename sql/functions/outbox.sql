-- ferry.mark_lock(mapping, row): the advisory lock key of a mark's claim (the 64-bit form: the
-- mapping in the top 16 bits, the row key below; keys that collide only make a claim skip a mark
-- for one round).
create or replace function ferry.mark_lock(p_mapping integer, p_row bigint)
returns bigint
language sql
immutable
parallel safe
as $fn$
    select (p_mapping::bigint << 48) # p_row;
$fn$;

-- ferry.mark_claimed(mapping, row): whether a worker holds that mark's claim right now (its
-- write to the app is in flight); a try-lock given back at once.
create or replace function ferry.mark_claimed(p_mapping integer, p_row bigint)
returns boolean
language sql
volatile
as $fn$
    select case when pg_try_advisory_lock(ferry.mark_lock(p_mapping, p_row))
                then not pg_advisory_unlock(ferry.mark_lock(p_mapping, p_row))
                else true end;
$fn$;

-- ferry.claim_marks(n, mapping, after): a worker's claim of up to n due marks of one active
-- mapping, in key order after the row key `after` (the worker's last claim of this mapping: the
-- removed marks before it are dead tuples every claim from the start would walk again until
-- vacuum; the worker starts over from the beginning when nothing is left after it). One mapping
-- a claim: the workers of one connection's lane claim only its mappings, so an app that is slow
-- to answer never holds the marks, or the workers, of another app (outbound/mod.rs), and the
-- scan is bounded to that mapping's marks whatever backlog the others have.
--
-- A claim is a session advisory lock (ferry.mark_lock) of the worker's connection, held until
-- the worker has committed the outcome and calls pg_advisory_unlock_all(), or until that
-- connection goes away (a killed process's claims lapse at once). Taking it writes nothing:
-- leasing each mark with an update cost a new tuple version, its WAL (decoded by the walsender
-- too) and a liveness lookup in pg_stat_activity for every mark another worker held — the
-- largest single cost per change. A mark another worker holds costs one failed try-lock.
--
-- The try-lock is a qual of the scan, so it is taken on the version the scan sees; the row
-- lock above it (`for update skip locked`) then moves to the mark's latest version and checks
-- the quals again: a mark removed since the scan began, or being written right now, is not
-- returned, and a mark whose seq moved is returned with its latest seq. A mark locked here
-- but not returned (removed, or being written) stays locked until the round's
-- pg_advisory_unlock_all(): another worker skips it for the length of one round, no more.
--
-- The planner settings make the plan independent of the outbox's statistics: the outbox fills
-- and drains by thousands of rows a second, so its statistics are nearly always stale, and a
-- plan chosen for "one row" (sort everything, hash-join everything) cost 100-300 ms a claim at
-- 100,000 marks. Walking the primary key stops after n rows whatever the table holds. The
-- incremental sort is off too (it sorted every mark of the mapping on each claim: 4,700
-- instead of 14,000 changes/s at 100,000 marks).
drop function if exists ferry.claim(integer, timestamptz, integer);
drop function if exists ferry.claim(integer, timestamptz, integer, integer, bigint);
-- (the earlier claim_marks(n, after mapping, after row) swept every mapping: replaced once)
do $do$
begin
    if (select proargnames[2] from pg_proc
         where oid = to_regprocedure('ferry.claim_marks(integer, integer, bigint)')) = 'p_after_mapping' then
        drop function ferry.claim_marks(integer, integer, bigint);
    end if;
end
$do$;
create or replace function ferry.claim_marks(p_limit integer, p_mapping integer, p_after_row bigint)
returns table (mapping_id integer, row_key bigint, seq bigint, attempts integer)
language plpgsql
set enable_seqscan = off
set enable_sort = off
set enable_incremental_sort = off
set enable_bitmapscan = off
as $fn$
begin
    if not exists (select 1 from ferry.mappings m where m.id = p_mapping and m.state = 'active') then
        return;
    end if;
    -- PL/pgSQL keeps the statement's plan for the session (an SQL function is planned at
    -- every call)
    return query
    select o.mapping_id, o.row_key, o.seq, o.attempts
      from ferry.outbox o
     where (o.mapping_id, o.row_key) > (p_mapping, p_after_row)
       and o.mapping_id = p_mapping
       -- one qual, so the try-lock comes after the other condition (as separate quals the
       -- planner orders them by cost)
       and case when o.next_attempt_at <= now()
                then pg_try_advisory_lock(ferry.mark_lock(o.mapping_id, o.row_key))
                else false end
     order by o.mapping_id, o.row_key
     limit p_limit
       for update of o skip locked;
end
$fn$;

-- ferry.snapshot_now(): the xmax of a snapshot taken now and the transactions it sees running
-- (64-bit ids). Decoding streams a commit as soon as its WAL is flushed, a moment before the
-- transaction becomes visible to other sessions (longer when a synchronous standby keeps it
-- waiting). The listener queues a commit's marks only once it is visible — below xmax and not
-- running (replication::visibility) — so a worker never reads a row without the change it was
-- marked for (it would find nothing to send, drop the mark, and the change would be lost).
-- Checked in Rust: per decoded id in SQL it cost 1-3 µs a change.
drop function if exists ferry.xacts_visible(bigint[]);
create or replace function ferry.snapshot_now(out xmax bigint, out running bigint[])
language sql
volatile
as $fn$
    select pg_snapshot_xmax(s)::text::bigint, array(select x::text::bigint from pg_snapshot_xip(s) x)
      from pg_current_snapshot() s;
$fn$;

-- ferry.note_applied(mapping, keys): tells the listener, through a transactional logical
-- message decoded with the transaction, that ferry wrote these rows for this mapping from the
-- app's own records (backfill, webhooks, polling) and moved their base to what it wrote, so
-- the mark their change would queue for this mapping could only diff to nothing: the listener
-- drops it (other mappings of the same table still get theirs, so the rows flow on to the other
-- apps). A worker whose API call overlapped such a write notices the moved base at its commit
-- and queues the row again itself. Content: '<mapping id>:<key>,<key>,...'.
drop function if exists ferry.note_inserted(integer, bigint[]);
create or replace function ferry.note_applied(p_mapping integer, p_keys bigint[])
returns void
language sql
volatile
as $fn$
    select case when cardinality(p_keys) > 0
                then pg_logical_emit_message(true, 'ferry.applied', p_mapping || ':' || array_to_string(p_keys, ','))
           end;
$fn$;
