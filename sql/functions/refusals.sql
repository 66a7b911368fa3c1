-- ferry.note_refusals(mapping, records, refused, faults): the inbound dead letters of one
-- ferry.apply batch, one open letter per record and field, never one per delivery or poll.
--
-- p_records: the batch as ferry.apply took it ({"id", "deleted", "values"}).
-- p_refused: [{"id", "error"}] records refused whole (field null), or not applied at all this
--            time (deferred: "error" null): none of their letters closes.
-- p_faults:  [{"id", "field", "type", "value", "error"}] single values refused; the record's
--            other fields were applied.
--
-- A letter still open for the same record and field counts the repeat (times, last_seen_at,
-- latest error). A field that came through clean closes its letter (resolution 'a good value
-- arrived'); a deletion closes all of the record's letters.
create or replace function ferry.note_refusals(p_mapping integer, p_records jsonb, p_refused jsonb, p_faults jsonb)
returns void
language sql
as $fn$
    with batch as (
        select r ->> 'id' as id, coalesce((r ->> 'deleted')::boolean, false) as deleted,
               case when jsonb_typeof(r -> 'values') = 'object' then r -> 'values' else '{}' end as vals
          from jsonb_array_elements(p_records) r
    ), held as (
        select e ->> 'id' as id from jsonb_array_elements(p_refused) e
    ), clean as (
        select b.id, k as field from batch b cross join lateral jsonb_object_keys(b.vals) k
         where not b.deleted
        union all
        select b.id, '' from batch b where not b.deleted
    )
    update ferry.dead_letters d
       set resolved_at = now(),
           resolution = case when exists (select 1 from batch b where b.id = d.remote_id and b.deleted)
                             then 'record deleted in the app' else 'a good value arrived' end
     where d.mapping_id = p_mapping and d.direction = 'inbound'
       and d.retried_at is null and d.resolved_at is null
       and d.remote_id in (select id from batch)
       and d.remote_id not in (select id from held)
       and (exists (select 1 from batch b where b.id = d.remote_id and b.deleted)
            or (exists (select 1 from clean c where c.id = d.remote_id and c.field = coalesce(d.field, ''))
                and not exists (select 1 from jsonb_array_elements(p_faults) f
                                 where f ->> 'id' = d.remote_id and f ->> 'field' = coalesce(d.field, ''))));

    insert into ferry.dead_letters as d (mapping_id, row_key, remote_id, field, direction, operation, error, payload)
    select distinct on (e ->> 'id', coalesce(e ->> 'field', ''))
           p_mapping,
           (select l.row_key from ferry.links l where l.mapping_id = p_mapping and l.remote_id = e ->> 'id'),
           e ->> 'id', e ->> 'field', 'inbound', 'apply',
           case when e ? 'field'
                then format('column %s (%s) refused the value %s: %s', e ->> 'field', e ->> 'type', e ->> 'value', e ->> 'error')
                else e ->> 'error' end,
           e - 'id' - 'error'
      from jsonb_array_elements(p_faults || (select coalesce(jsonb_agg(x), '[]') from jsonb_array_elements(p_refused) x
                                              where x ->> 'error' is not null)) e
    on conflict (mapping_id, remote_id, (coalesce(field, '')))
       where direction = 'inbound' and retried_at is null and resolved_at is null
    do update set times = d.times + 1, last_seen_at = now(), error = excluded.error,
                  payload = excluded.payload, row_key = coalesce(excluded.row_key, d.row_key);
$fn$;
