-- ferry.claim(n, lease, pid, after): a worker's claim of up to n due marks of active mappings,
-- in key order after the key `after` (the worker's last claim: the removed marks before it are
-- dead tuples every claim from the start would walk again until vacuum; the worker starts over
-- from the beginning when nothing is left after it), skipping marks another worker holds.
-- A claim is exclusive until `lease`, or until the process whose liveness connection is `pid`
-- goes away, whichever comes first.
--
-- The planner settings make the plan independent of the outbox's statistics: the outbox fills
-- and drains by thousands of rows a second, so its statistics are nearly always stale, and a
-- plan chosen for "one row" (sort everything, hash-join everything) cost 100-300 ms a claim at
-- 100,000 marks. Walking the primary key stops after n rows whatever the table holds. The
-- incremental sort is off too: with ferry.mappings as the outer side of a nested loop it sorted
-- every mark of the mapping on each claim (4,700 instead of 14,000 changes/s at 100,000 marks).
drop function if exists ferry.claim(integer, timestamptz, integer);
create or replace function ferry.claim(p_limit integer, p_lease timestamptz, p_pid integer,
                                       p_after_mapping integer, p_after_row bigint)
returns table (mapping_id integer, row_key bigint, seq bigint, attempts integer)
language plpgsql
set enable_seqscan = off
set enable_sort = off
set enable_incremental_sort = off
set enable_bitmapscan = off
as $fn$
begin
    -- PL/pgSQL keeps the statement's plan for the session (an SQL function is planned at
    -- every call)
    return query
    with picked as (
        select o.ctid
          from ferry.outbox o
         where (o.mapping_id, o.row_key) > (p_after_mapping, p_after_row)
           and o.mapping_id in (select m.id from ferry.mappings m where m.state = 'active')
           and o.next_attempt_at <= now()
           and (o.leased_until is null or o.leased_until < now()
                or o.leased_by not in (select a.pid from pg_stat_activity a where a.pid is not null))
         order by o.mapping_id, o.row_key
         limit p_limit
           for update of o skip locked)
    update ferry.outbox o
       set leased_until = p_lease, leased_by = p_pid, attempts = o.attempts + 1
     -- locked rows keep their ctid until this statement ends
     where o.ctid = any(array(select p.ctid from picked p))
 returning o.mapping_id, o.row_key, o.seq, o.attempts;
end
$fn$;

-- ferry.xacts_visible(xids): whether every given transaction (32-bit ids, as logical decoding
-- reports them) is visible to a snapshot taken now. Decoding streams a commit as soon as its
-- WAL is flushed, a moment before the transaction becomes visible to other sessions (longer
-- when a synchronous standby keeps it waiting). The listener queues a commit's marks only once
-- it is visible, so a worker never reads a row without the change it was marked for (it would
-- find nothing to send, drop the mark, and the change would be lost).
create or replace function ferry.xacts_visible(p_xids bigint[])
returns boolean
language sql
volatile
as $fn$
    with s0 as (select pg_current_snapshot() as snap),
         s as (select snap, pg_snapshot_xmax(snap)::text::numeric as xmax8 from s0)
    select coalesce(bool_and(pg_visible_in_snapshot(
               (case when x <= s.xmax8 % 4294967296
                     then s.xmax8 - s.xmax8 % 4294967296 + x
                     else s.xmax8 - s.xmax8 % 4294967296 - 4294967296 + x end)::text::xid8,
               s.snap)), true)
      from s, unnest(p_xids) as x;
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
