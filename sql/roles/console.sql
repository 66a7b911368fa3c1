-- The console's two group roles, created if missing and granted anew at every apply (so a
-- console object added by an upgrade is granted too):
--   ferry_reader    reads the console: status, row sync, history, pending, dead letters,
--                   conflicts, held deletes, the mappings and queues;
--   ferry_operator  ferry_reader, and runs the control functions: pause, resume, resync, retry,
--                   resolve, release or discard held deletes, prune history.
-- `grant ferry_reader to alice;` is all a person needs. The control functions and the two
-- read functions run as ferry's role (security definer, fixed search_path), so neither group
-- gets write access to ferry's tables; EXECUTE on them is taken from PUBLIC. People who edit
-- mirror tables need only those tables' privileges: the guard trigger reads nothing of ferry's.
-- Roles belong to the whole cluster: hubs in several databases share the two groups. Creating
-- them needs CREATEROLE; without it, what to run instead is returned (and logged by ferry).
create or replace function ferry.grant_console_roles()
returns setof text
language plpgsql
as $fn$
declare
    o text;
begin
    -- taken from PUBLIC whether or not the groups can be made: with security definer, EXECUTE
    -- is the whole permission
    revoke execute on function ferry.pause(text), ferry.resume(text), ferry.resync(text),
        ferry.resolve(bigint, text), ferry.retry(bigint), ferry.retry_all(text),
        ferry.release_deletes(text), ferry.discard_deletes(text), ferry.prune_history(),
        ferry.row_history(regclass, bigint), ferry.pending_writes()
      from public;
    foreach o in array array['ferry_reader', 'ferry_operator'] loop
        if not exists (select 1 from pg_roles where rolname = o) then
            begin
                execute format('create role %I nologin', o);
            exception
                -- another hub in this cluster made it a moment ago
                when duplicate_object or unique_violation then null;
                when insufficient_privilege then
                    return next format('console roles: role %s may not create roles, so %s is missing: run CREATE ROLE %s NOLOGIN; as a superuser (or grant CREATEROLE) and apply again',
                                       current_user, o, o);
            end;
        end if;
    end loop;
    if not exists (select 1 from pg_roles where rolname = 'ferry_reader')
       or not exists (select 1 from pg_roles where rolname = 'ferry_operator') then
        return;
    end if;
    if not pg_has_role('ferry_operator', 'ferry_reader', 'member') then
        begin
            grant ferry_reader to ferry_operator;
        exception
            when duplicate_object or unique_violation then null;
            when others then
                if not pg_has_role('ferry_operator', 'ferry_reader', 'member') then
                    return next format('console roles: ferry_operator is not a member of ferry_reader (%s): run GRANT ferry_reader TO ferry_operator; as a superuser',
                                       sqlerrm);
                end if;
        end;
    end if;

    grant usage on schema ferry to ferry_reader;
    -- the mirror schemas' names, for ferry.row_history('schema.table', key) (not their tables)
    for o in select distinct hub_schema from ferry.mappings loop
        begin
            execute format('grant usage on schema %I to ferry_reader', o);
        exception when others then
            return next format('console roles: cannot grant USAGE on schema %s to ferry_reader (%s)', o, sqlerrm);
        end;
    end loop;
    grant select on ferry.status, ferry.row_sync, ferry.open_conflicts, ferry.held_deletes,
        ferry.writable_columns, ferry.history, ferry.pending,
        ferry.dead_letters, ferry.conflicts, ferry.outbox, ferry.inbox,
        ferry.mappings, ferry.fields, ferry.mapping_progress
      to ferry_reader;
    grant execute on function ferry.row_history(regclass, bigint), ferry.pending_writes()
      to ferry_reader;
    grant execute on function ferry.pause(text), ferry.resume(text), ferry.resync(text),
        ferry.resolve(bigint, text), ferry.retry(bigint), ferry.retry_all(text),
        ferry.release_deletes(text), ferry.discard_deletes(text), ferry.prune_history()
      to ferry_operator;
    return;
end
$fn$;

-- at once, before any apply: a control function replaced as security definer is never
-- callable by PUBLIC while the engine starts
revoke execute on function ferry.pause(text), ferry.resume(text), ferry.resync(text),
    ferry.resolve(bigint, text), ferry.retry(bigint), ferry.retry_all(text),
    ferry.release_deletes(text), ferry.discard_deletes(text), ferry.prune_history(),
    ferry.row_history(regclass, bigint), ferry.pending_writes()
  from public;
