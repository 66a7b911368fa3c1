-- Remote deletions remembered past their link: a record's state read before its deletion and
-- applied after it (two inbox workers or two ferry processes) must not bring the row back.
create table ferry.tombstones (
    mapping_id integer not null references ferry.mappings (id) on delete cascade,
    remote_id  text not null,
    deleted_at timestamptz not null,
    primary key (mapping_id, remote_id)
);
create index tombstones_age on ferry.tombstones (deleted_at);
