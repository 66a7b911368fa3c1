-- ferry.claim_events(n): an inbox worker's claim of up to n due webhook events, oldest first.
-- Like ferry.claim_marks (outbox.sql): read `for update skip locked`, held as session advisory
-- locks of the worker's connection (class 0x66657201 in the two-key form, the event id's low
-- 31 bits; keys that collide only make a claim skip an event for one round) until the worker
-- has committed the outcome and calls pg_advisory_unlock_all(), or its connection goes away.
-- So the worker asks the app for the records (an HTTP call of up to 30 s) with no transaction
-- open: no row locks held and no snapshot holding back vacuum meanwhile, and a hub's
-- idle_in_transaction_session_timeout never ends the round.
--
-- The try-lock is the last part of one qual, evaluated on the rows the scan sees in id order
-- (sort and bitmap scans off: a plan that sorted would lock every due event first); an event
-- locked but not returned (removed or being written meanwhile) stays locked until the round's
-- unlock.
-- `source` is what the app said about the change's origin (HubSpot: changeSource), for
-- ferry.history.
do $do$
begin
    if exists (select 1 from pg_proc
                where proname = 'claim_events' and pronamespace = 'ferry'::regnamespace
                  and not ('source' = any (proargnames))) then
        drop function ferry.claim_events(integer);
    end if;
end
$do$;
create or replace function ferry.claim_events(p_limit integer)
returns table (id bigint, connection text, remote_object text, remote_id text, kind text, attempts integer,
               source text)
language plpgsql
set enable_seqscan = off
set enable_sort = off
set enable_incremental_sort = off
set enable_bitmapscan = off
as $fn$
begin
    return query
    select i.id, i.connection, coalesce(i.remote_object, ''), coalesce(i.remote_id, ''), i.kind, i.attempts,
           i.payload ->> 'changeSource'
      from ferry.inbox i
     where case when i.next_attempt_at <= now()
                then pg_try_advisory_lock(1717924353, (i.id % 2147483648)::integer)
                else false end
     order by i.id
     limit p_limit
       for update of i skip locked;
end
$fn$;

-- ferry.store_webhook_events(...): the events of several webhook deliveries stored in one
-- transaction (the webhook server's group commit: deliveries that arrive while one commit is
-- on its way to the disk wait for the next one, together). Element i of every array is one
-- event; `p_deliveries[i]` numbers the delivery it came in. Returns, per delivery, how many of
-- its events were stored: an event id seen before (ferry.seen_events, or earlier in the same
-- call) is a replay and is dropped, even if its first delivery was applied long ago. Events
-- are stored in array order, so the inbox keeps each delivery's order.
create or replace function ferry.store_webhook_events(
    p_connections text[], p_event_ids text[], p_objects text[], p_remote_ids text[],
    p_kinds text[], p_payloads jsonb[], p_raws text[], p_deliveries integer[])
returns table (delivery integer, stored bigint)
language plpgsql
as $fn$
#variable_conflict use_column
begin
    -- PL/pgSQL keeps the statement's plan between calls (an SQL function planned it at every
    -- call: ~1 ms of a one-event delivery's commit)
    return query
    with e as (
        select *
          from unnest(p_connections, p_event_ids, p_objects, p_remote_ids, p_kinds, p_payloads,
                      p_raws, p_deliveries)
               with ordinality
               as e(connection, event_id, remote_object, remote_id, kind, payload, raw, delivery, n)
    ),
    fresh as (
        insert into ferry.seen_events as s (connection, event_id)
        select distinct e.connection, e.event_id from e where e.event_id is not null
        on conflict do nothing
        returning s.connection, s.event_id
    ),
    chosen as (
        select e.*
          from e
         where e.event_id is null
            or e.n = (select min(d.n) from e d
                       where d.connection = e.connection and d.event_id = e.event_id)
               and exists (select 1 from fresh f
                            where f.connection = e.connection and f.event_id = e.event_id)
    ),
    kept as (
        insert into ferry.inbox as i (connection, event_id, remote_object, remote_id, kind, payload, raw)
        select c.connection, c.event_id, c.remote_object, c.remote_id, c.kind, c.payload, c.raw
          from chosen c
         order by c.n
        on conflict (connection, event_id) where event_id is not null do nothing
        returning 1
    )
    select d.delivery, count(c.n)
      from (select distinct e.delivery from e) d
      left join chosen c on c.delivery = d.delivery
     group by d.delivery;
end
$fn$;
