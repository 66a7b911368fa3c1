-- What a hub deletion does in each app (N-way: one table, several apps): `delete` the
-- record there (as before), or `ignore` (the app keeps its record; the link goes).
alter table ferry.mappings
    add column on_hub_delete text not null default 'delete'
        check (on_hub_delete in ('delete', 'ignore'));
