-- What a deletion in an app does to the hub row (N-way): `delete` it (and so the record in
-- every other app), `soft` (set _deleted_at; the soft_delete flag of earlier versions), or
-- `unlink` (keep the row, drop this app's link; the row is not created there again).
alter table ferry.mappings
    add column on_remote_delete text not null default 'delete'
        check (on_remote_delete in ('delete', 'unlink', 'soft'));
update ferry.mappings set on_remote_delete = 'soft' where soft_delete;

-- Rows an app unlinked (on_remote_delete = 'unlink'): not sent to that app again until a
-- record of it links to the row anew.
create table ferry.detached (
    mapping_id integer not null references ferry.mappings (id) on delete cascade,
    row_key    bigint not null,
    remote_id  text not null,
    at         timestamptz not null default now(),
    primary key (mapping_id, row_key)
);
