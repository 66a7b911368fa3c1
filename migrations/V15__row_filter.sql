-- Which hub rows a mapping's app gets: an SQL predicate on the row (`filter` in ferry.toml),
-- null for every row.
alter table ferry.mappings add column row_filter text;
