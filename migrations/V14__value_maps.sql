-- Value maps on fields: {hub value: app value}, applied both ways (e.g. the CRM's `customer`
-- is the support desk's `paying`). An unmapped value refuses only itself (`unmapped =
-- 'refuse'`, a dead letter) or passes through as it is (`'pass'`).
alter table ferry.fields
    add column value_map jsonb,
    add column unmapped text not null default 'refuse' check (unmapped in ('refuse', 'pass'));
