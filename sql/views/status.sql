-- ferry.status: one row per mapping, what an operator checks first.
create or replace view ferry.status as
select m.name                                        as mapping,
       m.connection,
       format('%I.%I', m.hub_schema, m.hub_table)    as hub_table,
       m.state,
       m.backfill_state,
       p.backfill_rows,
       (select count(*) from ferry.outbox o where o.mapping_id = m.id)              as outbox_backlog,
       (select count(*) from ferry.dead_letters d
         where d.mapping_id = m.id and d.retried_at is null)                        as dead_letters,
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
       p.reconcile_deleted
  from ferry.mappings m
  left join ferry.mapping_progress p on p.mapping_id = m.id
 order by m.name;

-- ferry.dead_letters is a table; ferry.row_sync shows, for any hub row, where it stands.
create or replace view ferry.row_sync as
select m.name as mapping,
       l.row_key,
       l.remote_id,
       case
           when d.id is not null then 'failed'
           when o.row_key is not null or l.remote_id is null then 'pending'
           else 'synced'
       end as state,
       coalesce(d.error, o.last_error) as reason,
       l.synced_at
  from ferry.links l
  join ferry.mappings m on m.id = l.mapping_id
  left join ferry.outbox o on o.mapping_id = l.mapping_id and o.row_key = l.row_key
  left join lateral (select dl.id, dl.error from ferry.dead_letters dl
                      where dl.mapping_id = l.mapping_id and dl.row_key = l.row_key and dl.retried_at is null
                      order by dl.id desc limit 1) d on true;
