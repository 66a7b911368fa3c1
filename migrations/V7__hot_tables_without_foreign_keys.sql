-- The tables ferry writes once per record or change lose their foreign key to ferry.mappings.
--
-- A foreign key check is a query per inserted row: measured on a 1,000-record backfill merge,
-- 7 µs of the 13 µs a link insert costs, and the same again on every outbox mark. Mappings are
-- rarely deleted (only by an operator, from psql); the trigger ferry_mappings_cleanup
-- (sql/triggers/control.sql) deletes their rows from these tables instead of the cascade.
alter table ferry.links drop constraint if exists links_mapping_id_fkey;
alter table ferry.outbox drop constraint if exists outbox_mapping_id_fkey;
alter table ferry.reconcile_seen drop constraint if exists reconcile_seen_mapping_id_fkey;
alter table ferry.tombstones drop constraint if exists tombstones_mapping_id_fkey;
