-- Workers look up, for every row they push, the fields held by an open manual conflict.
create index conflicts_held on ferry.conflicts (mapping_id, row_key)
    where decision = 'held' and resolved_at is null;
