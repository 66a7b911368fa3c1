-- Free room in every page of the tables ferry updates once per change, so the new version of
-- a row lands in its own page (a HOT update: no index entry written, the old version pruned in
-- place). A link's base moves on every synced change; a mark is leased by each claim.
alter table ferry.links set (fillfactor = 80);
alter table ferry.outbox set (fillfactor = 70);
