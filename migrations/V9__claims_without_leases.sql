-- Outbox claims are advisory locks of the claiming connection (ferry.claim_marks): the lease
-- columns are no longer written or read.
alter table ferry.outbox drop column if exists leased_until, drop column if exists leased_by;
