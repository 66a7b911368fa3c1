-- ferry.status: one row per mapping, what an operator checks first.
create or replace view ferry.status as
select m.name                                        as mapping,
       m.connection,
       format('%I.%I', m.hub_schema, m.hub_table)    as hub_table,
       case when f.tripped_at is not null then m.state || ', holding deletes' else m.state end as state,
       m.backfill_state,
       p.backfill_rows,
       (select count(*) from ferry.outbox o where o.mapping_id = m.id)              as outbox_backlog,
       (select count(*) from ferry.dead_letters d
         where d.mapping_id = m.id and d.retried_at is null and d.resolved_at is null) as dead_letters,
       (select count(*) from ferry.conflicts c
         where c.mapping_id = m.id and c.resolved_at is null and c.decision = 'held') as open_conflicts,
       (select count(*) from ferry.links l where l.mapping_id = m.id and l.remote_id is not null) as linked_rows,
       p.last_inbound_at,
       p.last_outbound_at,
       (select max(pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn))::bigint
          from pg_replication_slots s
         where s.database = current_database() and s.plugin = 'pgoutput')           as replication_lag_bytes,
       p.polled_at,
       p.reconciled_at,
       p.reconcile_repaired,
       p.reconcile_deleted,
       (select count(*) from ferry.deletes_held h where h.mapping_id = m.id and h.released_at is null) as held_deletes,
       f.reason                                      as fuse_reason,
       p.poll_error,
       p.poll_failed_at
  from ferry.mappings m
  left join ferry.mapping_progress p on p.mapping_id = m.id
  left join ferry.delete_fuses f on f.mapping_id = m.id
 order by m.name;

-- ferry.held_deletes: deletions the mass-delete fuse holds. side 'hub': the row was deleted in
-- the hub and the app still has the record; side 'app': the app deleted the record and the hub
-- row is still there. ferry.release_deletes(mapping) carries them out,
-- ferry.discard_deletes(mapping) undoes them.
create or replace view ferry.held_deletes as
select m.name as mapping, h.side, format('%I.%I', m.hub_schema, m.hub_table) as hub_table,
       h.row_key, h.remote_id, h.held_at, h.released_at
  from ferry.deletes_held h
  join ferry.mappings m on m.id = h.mapping_id
 order by h.id;

-- ferry.row_sync: for any hub row ferry knows (linked, queued or failed), where it stands and
-- why: failed (an open dead letter), conflict (a field held by a manual conflict), pending
-- (queued, or created but not linked yet), synced.
create or replace view ferry.row_sync as
with k as (
    select mapping_id, row_key from ferry.links
    union
    select mapping_id, row_key from ferry.outbox
    union
    select mapping_id, row_key from ferry.dead_letters where retried_at is null and resolved_at is null and row_key is not null
)
select m.name as mapping,
       k.row_key,
       l.remote_id,
       case
           when d.id is not null then 'failed'
           when c.fields is not null then 'conflict'
           when o.row_key is not null or l.remote_id is null then 'pending'
           else 'synced'
       end as state,
       coalesce(d.error,
                'manual conflict on ' || c.fields || ': see ferry.open_conflicts, then ferry.resolve(id, ''hub''|''remote'')',
                case when o.row_key is not null and m.state = 'paused' then 'mapping paused: ferry.resume(' || quote_literal(m.name) || ')' end,
                o.last_error) as reason,
       l.synced_at
  from k
  join ferry.mappings m on m.id = k.mapping_id
  left join ferry.links l on l.mapping_id = k.mapping_id and l.row_key = k.row_key
  left join ferry.outbox o on o.mapping_id = k.mapping_id and o.row_key = k.row_key
  left join lateral (select dl.id, dl.error from ferry.dead_letters dl
                      where dl.mapping_id = k.mapping_id and dl.row_key = k.row_key and dl.retried_at is null and dl.resolved_at is null
                      order by dl.id desc limit 1) d on true
  left join lateral (select string_agg(cf.field, ', ' order by cf.field) as fields from ferry.conflicts cf
                      where cf.mapping_id = k.mapping_id and cf.row_key = k.row_key
                        and cf.decision = 'held' and cf.resolved_at is null) c on true;

-- ferry.open_conflicts: manual conflicts waiting for ferry.resolve(id, 'hub' | 'remote').
create or replace view ferry.open_conflicts as
select c.id, m.name as mapping, format('%I.%I', m.hub_schema, m.hub_table) as hub_table, c.row_key, c.field,
       c.hub_value, c.remote_value, c.base_value, c.created_at
  from ferry.conflicts c
  join ferry.mappings m on m.id = c.mapping_id
 where c.decision = 'held' and c.resolved_at is null
 order by c.id;
