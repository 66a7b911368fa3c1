-- Why the last poll of a mapping failed (cleared by the next poll that succeeds), so that
-- ferry.status says when an app stopped answering polls, e.g. a Salesforce connection paused
-- because the org's daily API allocation is spent.
alter table ferry.mapping_progress add column poll_error text;
alter table ferry.mapping_progress add column poll_failed_at timestamptz;
