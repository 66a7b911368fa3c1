-- One bad value refuses only itself.
--
-- An inbound dead letter is now one per record and field (field null: the whole record), kept
-- open and counted while the app keeps sending the value, and closed by ferry when a good value
-- (or the record's deletion) arrives: `times`, `last_seen_at`, `resolved_at`, `resolution`.
-- An earlier version added a row at every poll; those duplicates are closed first.
alter table ferry.dead_letters
    add column field        text,
    add column times        integer not null default 1,
    add column last_seen_at timestamptz not null default now(),
    add column resolved_at  timestamptz,
    add column resolution   text;

update ferry.dead_letters d
   set resolved_at = now(), resolution = 'duplicate of a later dead letter'
 where d.direction = 'inbound' and d.retried_at is null
   and exists (select 1 from ferry.dead_letters e
                where e.mapping_id = d.mapping_id and e.remote_id = d.remote_id
                  and e.direction = 'inbound' and e.retried_at is null and e.id > d.id);

create unique index dead_letters_open_inbound
    on ferry.dead_letters (mapping_id, remote_id, (coalesce(field, '')))
    where direction = 'inbound' and retried_at is null and resolved_at is null;

-- A webhook event PostgreSQL cannot hold as jsonb (a NUL character, \u0000, anywhere in it) is
-- kept as the JSON text it arrived as, in `raw`, with `payload` null: stored, never refused.
alter table ferry.inbox
    alter column payload drop not null,
    add column raw text;
