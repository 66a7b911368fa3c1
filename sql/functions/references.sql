-- ferry.resolve_references(mapping, records): the records ferry.apply takes, with each
-- reference field's value (the app's id of the referenced record) replaced by the hub row key
-- of its mirror in the referenced mapping. An id the hub does not know (the referenced record
-- has not arrived yet, or never will) refuses only that field: it becomes a fault, one dead
-- letter per record and field, closed when a value that resolves arrives.
create or replace function ferry.resolve_references(p_mapping integer, p_records jsonb)
returns jsonb
language plpgsql
stable
as $fn$
declare
    out_recs jsonb := '[]';
    rec      jsonb;
    f        record;
    v        text;
    k        bigint;
begin
    for rec in select value from jsonb_array_elements(p_records) loop
        if jsonb_typeof(rec -> 'values') = 'object' then
            for f in select fl.hub_column, fl.type, r.id as ref_id, r.name as ref_name
                       from ferry.fields fl join ferry.mappings r on r.name = fl.references_mapping
                      where fl.mapping_id = p_mapping loop
                continue when not (rec -> 'values') ? f.hub_column;
                v := rec -> 'values' ->> f.hub_column;
                continue when v is null;
                select l.row_key into k from ferry.links l where l.mapping_id = f.ref_id and l.remote_id = v;
                if k is not null then
                    rec := jsonb_set(rec, array['values', f.hub_column], to_jsonb(k));
                else
                    rec := jsonb_set(rec, '{values}', (rec -> 'values') - f.hub_column);
                    rec := jsonb_set(rec, '{faults}', coalesce(rec -> 'faults', '[]') || jsonb_build_array(jsonb_build_object(
                        'field', f.hub_column, 'type', f.type, 'value', v,
                        'error', format('references %s record %s, which the hub does not have', f.ref_name, v))));
                end if;
            end loop;
        end if;
        out_recs := out_recs || jsonb_build_array(rec);
    end loop;
    return out_recs;
end
$fn$;

-- ferry.requeue_references(mapping): after records of `mapping` were applied, the inbound
-- records of other mappings whose reference to one of them was refused (an open dead letter:
-- the referenced record had not arrived yet) are queued in the inbox to be read again; the
-- reference then resolves and ferry.note_refusals closes the letter. Returns how many.
create or replace function ferry.requeue_references(p_mapping integer)
returns integer
language sql
as $fn$
    with due as (
        select distinct m.connection, m.remote_object, d.remote_id
          from ferry.mappings r
          join ferry.fields fl on fl.references_mapping = r.name
          join ferry.mappings m on m.id = fl.mapping_id
          join ferry.dead_letters d on d.mapping_id = fl.mapping_id and d.field = fl.hub_column
         where r.id = p_mapping
           and d.direction = 'inbound' and d.retried_at is null and d.resolved_at is null
           and d.remote_id is not null
           and exists (select 1 from ferry.links l
                        where l.mapping_id = p_mapping and l.remote_id = d.payload ->> 'value')
           and not exists (select 1 from ferry.inbox i
                            where i.connection = m.connection and i.remote_object = m.remote_object
                              and i.remote_id = d.remote_id and i.kind = 'changed')
    ), queued as (
        insert into ferry.inbox (connection, remote_object, remote_id, kind, payload)
        select connection, remote_object, remote_id, 'changed', jsonb_build_object('reference_arrived', true)
          from due
        returning 1
    )
    select count(*)::integer from queued;
$fn$;
