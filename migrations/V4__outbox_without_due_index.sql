-- No query reads ferry.outbox by next_attempt_at (ferry.claim walks the primary key and filters
-- on it); the index only cost every mark a second index entry and kept retry updates from
-- being HOT.
drop index if exists ferry.outbox_due;
