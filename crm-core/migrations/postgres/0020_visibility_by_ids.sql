-- Record visibility at the cost of an id comparison (docs/benchmarks.md, "Record visibility at
-- a million contacts"). The policies of 0018 read nine settings, each an InitPlan, and looked
-- shares up with a correlated subplan: PostgreSQL sets all of that up on every execution, which
-- tripled the cost of a GET by id for a restricted reader. These read three settings per table:
--
--   crm.read.<table>   all | ids | ids+shares: the reader's mode for the table
--   crm.ids.<table>    '{uuid,…}': the people whose records the reader sees (the reader for
--                      `own`, their teammates for `team`): a record is visible when its owner
--                      or its creator is one of them
--   crm.shared.<table> '{uuid,…}': the records shared with the reader or their teams; read
--                      (parsed) only for a row that the people do not give
--   crm.grantees       '{uuid,…}': the reader and their teams, for `ids+shares`, the mode of a
--                      reader with more shares on the table than the library lists
--                      (`crm_shared_with_reader` looks each row up)
--
-- Made by `crm-core/src/storage/visibility.rs`. An unset mode or list lets nothing through.
-- Still restrictive, SELECT only, for the role `crm_reader` alone (see 0018).

create function crm_shared_with_reader(kind text, org uuid, record uuid) returns boolean
    language plpgsql stable
as $$
begin
    return exists (
        select 1 from record_shares s
         where s.organization_id = org and s.entity = kind and s.record_id = record
           and s.grantee_id = any (nullif(current_setting('crm.grantees', true), '')::uuid[]));
end
$$;

do $$
declare
    t record;
    people text;
    shared text;
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
        people := format('nullif(current_setting(%L, true), '''')::uuid[]', 'crm.ids.' || t.tbl);
        shared := format('nullif(current_setting(%L, true), '''')::uuid[]', 'crm.shared.' || t.tbl);
        execute format('drop policy record_visibility on %I', t.tbl);
        -- InitPlans, set up once per execution and evaluated when first needed: the mode, the
        -- people, the shared records (only for a row the people do not give). The `case` is
        -- evaluated per row; the rare `ids+shares` mode reads its people per row instead.
        execute format(
            'create policy record_visibility on %1$I as restrictive for select to crm_reader using (
                 case (select current_setting(%2$L, true))
                     when ''all'' then true
                     when ''ids'' then array[%3$s] && (select %4$s)
                         or id = any ((select %5$s)::uuid[])
                     when ''ids+shares'' then array[%3$s] && %4$s
                         or crm_shared_with_reader(%6$L, organization_id, id)
                     else false
                 end)',
            t.tbl, 'crm.read.' || t.tbl,
            concat_ws(', ', t.owner, 'created_by'),
            people, shared, t.kind);
        -- A list narrowed to one person's records reads that person's live records in order
        -- (the creator's index is 0017's).
        if t.owner is not null then
            execute format('create index %I on %I (organization_id, %I, id) where not is_deleted',
                           t.tbl || '_live_' || replace(t.owner, '_id', '') || '_idx', t.tbl, t.owner);
        end if;
    end loop;
end
$$;
