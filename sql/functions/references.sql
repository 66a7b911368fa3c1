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
