-- ferry.pending: for every queued or held hub row, the exact write the next attempt would make,
-- computed here without calling the app (the same plan as the outbound worker, outbound/plan.rs):
-- one line per field sent, with the app, the operation, the remote property, the base (what both
-- sides last agreed on), the hub's new value and the string the app receives (after the field's
-- transform and value map; null clears the property, or is a value the map refuses; a reference
-- field sends the app's id of the referenced row's record, null while that record is not in the
-- app yet, and the state says so). A delete is one line with field null.
--   operation: create | update | delete | release (the row is gone and the mapping keeps the
--              app's record: on_hub_delete = 'ignore') | nothing (no field differs: the mark just goes)
--   state:     queued | retrying (attempt n: last error) | paused | held by the mass-delete fuse
--              | waiting for the first backfill (a create while a match key is being matched)
-- Fields held by an open manual conflict are not sent and not listed.
create or replace function ferry.pending_writes()
returns table (mapping text, app text, hub_table text, row_key bigint, remote_id text, operation text,
               field text, remote_property text, base_value jsonb, new_value jsonb, sends text, state text)
language plpgsql
security definer set search_path = pg_catalog, ferry, pg_temp
stable
as $fn$
declare
    m ferry.mappings;
begin
    for m in select * from ferry.mappings mm
              where exists (select 1 from ferry.outbox o where o.mapping_id = mm.id)
                 or exists (select 1 from ferry.deletes_held h where h.mapping_id = mm.id and h.side = 'hub')
              order by mm.name loop
        return query execute format(
            $q$
            with marks as (
                select o.row_key,
                       case when m.state = 'paused' then 'paused'
                            when o.attempts > 0 then format('retrying (attempt %%s: %%s)', o.attempts + 1, o.last_error)
                            else 'queued' end as state
                  from ferry.outbox o join ferry.mappings m on m.id = o.mapping_id
                 where o.mapping_id = $1
                union all
                select h.row_key, 'held by the mass-delete fuse: ferry.release_deletes or ferry.discard_deletes'
                  from ferry.deletes_held h
                 where h.mapping_id = $1 and h.side = 'hub' and h.released_at is null
                   and not exists (select 1 from ferry.outbox o where o.mapping_id = $1 and o.row_key = h.row_key)
            ), rows as (
                select k.row_key, k.state,
                       (select to_jsonb(t) from %1$s t where t.%2$I = k.row_key %3$s and (%4$s)) as doc,
                       -- outside the mapping's filter, linked by a record the app had itself:
                       -- not this app's row (outbound/mod.rs)
                       (exists (select 1 from %1$s t where t.%2$I = k.row_key %3$s and not coalesce((%4$s), false))
                        and l.row_key is not null
                        and not coalesce((select (%4$s) from jsonb_populate_record(null::%1$s, l.base) t), false))
                       or exists (select 1 from ferry.detached d where d.mapping_id = $1 and d.row_key = k.row_key) as not_ours,
                       l.row_key is not null as linked, l.remote_id, coalesce(l.base, '{}') as base,
                       coalesce((select array_agg(c.field) from ferry.conflicts c
                                  where c.mapping_id = $1 and c.row_key = k.row_key
                                    and c.decision = 'held' and c.resolved_at is null), '{}') as held
                  from marks k
                  left join ferry.links l on l.mapping_id = $1 and l.row_key = k.row_key
            ), planned as (
                select r.*,
                       case when r.not_ours then 'nothing'
                            when r.doc is null and r.remote_id is not null then
                                case when $6 then 'delete' else 'release' end
                            when r.doc is null then 'nothing'
                            when r.remote_id is null then 'create'
                            else 'update' end as op
                  from rows r
            )
            select $2, $3, $4, p.row_key, p.remote_id, p.op,
                   f.hub_column, f.remote_property,
                   case when p.op = 'update' then nullif(p.base -> f.hub_column, 'null') end,
                   nullif(p.doc -> f.hub_column, 'null'),
                   case when f.references_mapping is not null then rf.remote_id
                        when f.value_map is null or t.s is null then t.s
                        else coalesce(f.value_map ->> t.s, case when f.unmapped = 'pass' then t.s end) end,
                   case when f.references_mapping is not null and t.s is not null and rf.remote_id is null
                        then format('waiting for the referenced row %%s (%%s) to reach the app', t.s, f.references_mapping)
                        when p.op = 'create' and $5 then 'waiting for the first backfill (match key)' else p.state end
              from planned p
              join ferry.fields f on f.mapping_id = $1 and f.direction <> 'inbound'
              cross join lateral (select case jsonb_typeof(p.doc -> f.hub_column)
                                             when 'string' then p.doc ->> f.hub_column
                                             when 'null' then null
                                             else (p.doc -> f.hub_column)::text end as s) v
              cross join lateral (select case f.transform
                                             when 'lowercase' then lower(v.s) when 'uppercase' then upper(v.s)
                                             when 'trim' then btrim(v.s) else v.s end as s) t
              -- a reference field: the app gets its own id of the referenced row's record
              left join lateral (select lr.remote_id
                                   from ferry.links lr join ferry.mappings mr on mr.id = lr.mapping_id
                                  where f.references_mapping is not null and mr.name = f.references_mapping
                                    and lr.row_key = t.s::bigint) rf on true
             where (p.op = 'create' and v.s is not null)
                or (p.op = 'update' and f.hub_column <> all (p.held)
                    and nullif(p.doc -> f.hub_column, 'null') is distinct from nullif(p.base -> f.hub_column, 'null'))
            union all
            select $2, $3, $4, p.row_key, p.remote_id, case when p.op = 'update' then 'nothing' else p.op end,
                   null, null, null, null, null, p.state
              from planned p
             where p.op in ('delete', 'release', 'nothing')
                or (p.op = 'update' and not exists (
                        select 1 from ferry.fields f
                         where f.mapping_id = $1 and f.direction <> 'inbound' and f.hub_column <> all (p.held)
                           and nullif(p.doc -> f.hub_column, 'null') is distinct from nullif(p.base -> f.hub_column, 'null')))
            $q$,
            format('%I.%I', m.hub_schema, m.hub_table), m.key_column,
            case when m.soft_delete then 'and t._deleted_at is null' else '' end,
            coalesce(m.row_filter, 'true'))
        using m.id, m.name, m.connection, format('%I.%I', m.hub_schema, m.hub_table),
              m.match_key is not null and m.backfill_state <> 'done', m.on_hub_delete = 'delete';
    end loop;
end
$fn$;

create or replace view ferry.pending as
select p.* from ferry.pending_writes() p
 order by p.mapping, p.row_key, p.field;
