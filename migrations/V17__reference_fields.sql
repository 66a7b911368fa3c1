-- Reference fields: a hub column holding the row key of a row another mapping syncs (a Zendesk
-- user's organization ↔ the hub's organizations row). The app's id of the referenced record
-- is translated to that row's key on the way in, and back on the way out.
alter table ferry.fields add column references_mapping text;
