-- ferry.retry(dead letter id): queue the failed change again (outbound: re-mark the row, so the
-- worker diffs its current values; inbound: re-fetch the record). Returns false if the dead
-- letter does not exist or was already retried or resolved.
create or replace function ferry.retry(p_dead_letter bigint)
returns boolean
language plpgsql
security definer set search_path = pg_catalog, ferry, pg_temp
as $fn$
declare
    d ferry.dead_letters;
begin
    select * into d from ferry.dead_letters where id = p_dead_letter and retried_at is null and resolved_at is null for update;
    if not found then
        return false;
    end if;
    if d.direction = 'outbound' and d.row_key is not null then
        insert into ferry.outbox (mapping_id, row_key) values (d.mapping_id, d.row_key)
        on conflict (mapping_id, row_key) do update
           set seq = ferry.outbox.seq + 1, attempts = 0, next_attempt_at = now(), last_error = null;
    elsif d.direction = 'inbound' and d.remote_id is not null then
        insert into ferry.inbox (connection, remote_object, remote_id, kind, payload)
        select m.connection, m.remote_object, d.remote_id, 'changed', jsonb_build_object('retry', d.id)
          from ferry.mappings m where m.id = d.mapping_id;
    end if;
    update ferry.dead_letters set retried_at = now() where id = p_dead_letter;
    perform pg_notify('ferry_control', json_build_object('retry', p_dead_letter)::text);
    return true;
end
$fn$;

-- ferry.retry_all(mapping name): retry every open dead letter of a mapping; returns how many.
create or replace function ferry.retry_all(p_mapping text)
returns integer
language sql
security definer set search_path = pg_catalog, ferry, pg_temp
as $fn$
    select count(*)::integer
      from ferry.dead_letters d
      join ferry.mappings m on m.id = d.mapping_id
     where m.name = p_mapping and d.retried_at is null and d.resolved_at is null and ferry.retry(d.id);
$fn$;
