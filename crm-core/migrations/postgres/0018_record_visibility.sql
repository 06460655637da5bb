-- Record visibility, enforced by the database too: a restricted reader (a user or API key whose
-- permission set narrows what they read) is bound to their reach with session settings, and
-- these policies let through only the rows the library's own conditions select. A missing
-- check in the library still cannot return a record the caller may not see.
--
-- The settings (made by `crm-core/src/storage/postgres.rs` when it binds a connection for a
-- restricted read; empty otherwise):
--   crm.restricted         'on' for a restricted reader; anything else lets every row through
--   crm.reach.<table>      none | own | team | all: the reader's read reach into the table
--   crm.user_id            the reader's user (their own records)
--   crm.teammates          '{uuid,…}': the members of the reader's teams, the reader included
--   crm.grantees           '{uuid,…}': the reader and their teams, whom shares name
--
-- The policies apply to the role `crm_reader` alone, which a restricted reader's connection
-- switches to (in the round trip that binds it): it is a member of `crm_app`, so it has the
-- same privileges and the same `tenant_isolation` policies, and readers who see everything
-- (as `crm_app`) pay nothing for record visibility. Each setting is read once per statement
-- (an InitPlan: `(select current_setting(…))`). Restrictive: they narrow what
-- `tenant_isolation` already allows, never widen it. For SELECT only: writes run as `crm_app`,
-- behind the library's own checks.
--
-- A test (`record_visibility_covers_every_entity`) checks every table of the entity registry
-- has its policy.

do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'crm_reader') then
        begin
            create role crm_reader nologin;
        exception when duplicate_object or unique_violation then
            null; -- another database of this cluster created it at the same moment
        end;
    end if;
    if not pg_has_role('crm_reader', 'crm_app', 'member') then
        grant crm_app to crm_reader;
    end if;
    -- The library's connections log in as the URL's role and switch roles from there.
    if not pg_has_role(current_user, 'crm_reader', 'member') then
        execute format('grant crm_reader to %I', current_user);
    end if;
end
$$;

do $$
declare
    t record;
    mine text;
    mates text;
begin
    for t in select * from (values
        ('accounts', 'account', 'owner_id'),
        ('contacts', 'contact', 'owner_id'),
        ('leads', 'lead', 'owner_id'),
        ('opportunities', 'opportunity', 'owner_id'),
        ('invoices', 'invoice', null),
        ('activities', 'activity', 'assignee_id')
    ) as v (tbl, kind, owner)
    loop
        mine := '(select nullif(current_setting(''crm.user_id'', true), '''')::uuid)';
        -- coalesce: `= any (<subquery>)` would compare with the subquery's rows, not the array.
        mates := 'coalesce((select nullif(current_setting(''crm.teammates'', true), '''')::uuid[]), ''{}'')';
        execute format(
            'create policy record_visibility on %1$I as restrictive for select to crm_reader using (
                 (select coalesce(current_setting(''crm.restricted'', true), '''') <> ''on'')
                 or (select current_setting(''crm.reach.%1$s'', true)) = ''all''
                 or ((select current_setting(''crm.reach.%1$s'', true)) = ''own''
                     and (%3$s or created_by = %4$s))
                 or ((select current_setting(''crm.reach.%1$s'', true)) = ''team''
                     and (%5$s or created_by = any (%6$s)))
                 or exists (
                     select 1 from record_shares s
                      where s.organization_id = %1$I.organization_id
                        and s.entity = %2$L
                        and s.record_id = %1$I.id
                        and s.grantee_id = any (coalesce((select nullif(current_setting(''crm.grantees'', true), '''')::uuid[]), ''{}''))))',
            t.tbl, t.kind,
            case when t.owner is null then 'false' else format('%I = %s', t.owner, mine) end,
            mine,
            case when t.owner is null then 'false' else format('%I = any (%s)', t.owner, mates) end,
            mates);
    end loop;
end
$$;
