-- The hub's start-up check (src/hub/platform.rs): the platform, told apart by the roles each
-- one creates, and whether ferry's role may replicate and create its schemas.
select current_setting('wal_level') as wal_level,
       current_user::text as usr,
       current_database()::text as db,
       r.rolsuper as superuser,
       r.rolsuper or r.rolreplication
           or exists (select 1 from pg_roles g
                       where g.rolname = 'rds_replication'
                         and pg_has_role(current_user, g.oid, 'member')) as can_replicate,
       has_database_privilege(current_database(), 'create')
           or exists (select 1 from pg_namespace where nspname = 'ferry'
                         and pg_has_role(current_user, nspowner, 'usage')) as can_create,
       case
           when exists (select 1 from pg_roles where rolname = 'rds_superuser') then 'rds'
           when exists (select 1 from pg_roles where rolname = 'cloudsqlsuperuser') then 'cloudsql'
           when exists (select 1 from pg_roles where rolname = 'azure_pg_admin') then 'azure'
           when exists (select 1 from pg_roles where rolname = 'supabase_admin') then 'supabase'
           when exists (select 1 from pg_roles where rolname = 'neon_superuser') then 'neon'
       end as platform
  from pg_roles r
 where r.rolname = current_user
