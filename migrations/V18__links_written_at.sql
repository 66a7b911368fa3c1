-- When ferry last recorded a write of the record to its app (the outbound commit's clock).
-- A read of the record that began before it may show the app as it was before that write,
-- whatever the app's own update time says (a write that changed nothing keeps the record's
-- old time), so ferry.apply holds such a read back and the record is read again.
alter table ferry.links add column written_at timestamptz;
