-- The change feed: the event log read in commit order, per organization, by a cursor that never
-- skips a transaction that commits late.
--
-- Event ids (UUIDv7) and transaction ids are taken when a write starts, not when it commits: a
-- reader that has seen id 10 may later meet id 9 from a slower writer. So each committing
-- transaction that wrote events takes the next `position` of its organization *at commit time*
-- (a deferred trigger), under the row lock of the organization's `feed_heads` row, which it
-- holds until the commit ends. Positions are therefore handed out in commit order, and any
-- snapshot that sees position n sees every position below it. The cost: the commits of one
-- organization's writes serialize for the moment of the commit itself.

alter table events add column txid bigint not null default (pg_current_xact_id()::text::bigint);
create index events_txid_idx on events (organization_id, txid);

create table feed_heads (
    organization_id uuid not null references organizations (id),
    position        bigint not null,
    primary key (organization_id)
);

create table feed_commits (
    organization_id uuid not null references organizations (id),
    position        bigint not null,
    txid            bigint not null,
    committed_at    timestamptz not null default statement_timestamp(),
    primary key (organization_id, position),
    unique (organization_id, txid)
);

-- What was logged before the feed existed is its first commit (the column default above gave
-- every existing event this migration's transaction id).
insert into feed_heads (organization_id, position)
    select distinct organization_id, 1 from events;
insert into feed_commits (organization_id, position, txid)
    select distinct organization_id, 1, txid from events;

-- Runs at commit for each event the transaction wrote; the first one of each organization
-- takes the position, the others find it taken (a transaction-local setting short-cuts the
-- common case of one organization).
create function crm_feed_stamp() returns trigger language plpgsql as $$
declare
    me constant bigint := pg_current_xact_id()::text::bigint;
    mark constant text := new.organization_id::text || '/' || me::text;
begin
    if current_setting('crm.feed_stamped', true) = mark then
        return null;
    end if;
    if not exists (
        select 1 from feed_commits where organization_id = new.organization_id and txid = me
    ) then
        with head as (
            insert into feed_heads as h (organization_id, position)
                values (new.organization_id, 1)
                on conflict (organization_id) do update set position = h.position + 1
                returning h.position
        )
        insert into feed_commits (organization_id, position, txid)
            select new.organization_id, head.position, me from head;
    end if;
    perform set_config('crm.feed_stamped', mark, true);
    return null;
end
$$;

create constraint trigger events_feed_stamp
    after insert on events
    deferrable initially deferred
    for each row execute function crm_feed_stamp();

-- Makes a table a tenant table: forced row-level security under the `tenant_isolation` policy
-- (as 0001 spells out for the first ones). Later migrations call it for their own tables.
create function crm_isolate_tenant_table(t regclass) returns void language plpgsql as $$
declare
    rule constant text :=
        'organization_id = nullif(current_setting(''crm.org_id'', true), '''')::uuid';
begin
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (%s) with check (%s)', t, rule, rule);
end
$$;

select crm_isolate_tenant_table('feed_heads');
select crm_isolate_tenant_table('feed_commits');
grant select, insert, update on feed_heads to crm_app;
grant select, insert on feed_commits to crm_app;
