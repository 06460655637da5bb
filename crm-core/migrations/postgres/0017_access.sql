-- The access model: teams and their members, permission sets (record visibility per entity and
-- field permissions), the permission set of each user and API key, and records shared with a
-- user or a team. What they mean is written in `crm-core/src/access/`.
--
-- Existing installations keep their behaviour: users and API keys without a permission set act
-- with their role's built-in access (everything readable and writable; users trash what they
-- created or own), exactly as before this migration.

create table teams (
    organization_id uuid not null references organizations (id),
    id              uuid not null,
    name            text not null,
    description     text not null default '',
    manager_id      uuid,
    version         bigint not null default 1,
    created_at      timestamptz not null,
    updated_at      timestamptz not null,
    primary key (organization_id, id),
    foreign key (organization_id, manager_id) references users (organization_id, id)
);
create unique index teams_name_key on teams (organization_id, lower(name));

-- A user may be in several teams. Looked up by user to resolve a caller's teams.
create table team_members (
    organization_id uuid not null,
    team_id         uuid not null,
    user_id         uuid not null,
    added_at        timestamptz not null,
    primary key (organization_id, team_id, user_id),
    foreign key (organization_id, team_id) references teams (organization_id, id) on delete cascade,
    foreign key (organization_id, user_id) references users (organization_id, id)
);
create index team_members_user_idx on team_members (organization_id, user_id);

-- `entities`: {"<table>": {"read": reach, "write": reach, "delete": reach}}, reach one of
-- none | own | team | all; an entity not named is `none`. `fields`: {"<table>": {"<field>":
-- "hidden" | "read_only"}}. JSON text, as webhook subscriptions' event types: the library
-- checks it when written and reads it whole.
create table permission_sets (
    organization_id uuid not null references organizations (id),
    id              uuid not null,
    name            text not null,
    description     text not null default '',
    entities        text not null default '{}',
    fields          text not null default '{}',
    version         bigint not null default 1,
    created_at      timestamptz not null,
    updated_at      timestamptz not null,
    primary key (organization_id, id)
);
create unique index permission_sets_name_key on permission_sets (organization_id, lower(name));

alter table users add column permission_set_id uuid;
alter table users add foreign key (organization_id, permission_set_id)
    references permission_sets (organization_id, id);
-- An API key acts with its own permission set, or on behalf of a user (`user_id`: that user's
-- access, narrowed by the key's scopes).
alter table api_keys add column permission_set_id uuid;
alter table api_keys add foreign key (organization_id, permission_set_id)
    references permission_sets (organization_id, id);
alter table api_keys add column user_id uuid;
alter table api_keys add foreign key (organization_id, user_id) references users (organization_id, id);

-- One record shared with a user or a team, for reading or for writing (which includes
-- reading). Looked up by record (who may see it) and by grantee (what a caller was given).
create table record_shares (
    organization_id uuid not null,
    entity          text not null,
    record_id       uuid not null,
    grantee_kind    text not null check (grantee_kind in ('user', 'team')),
    grantee_id      uuid not null,
    access          text not null check (access in ('read', 'write')),
    created_by      uuid,
    created_at      timestamptz not null,
    primary key (organization_id, entity, record_id, grantee_id)
);
create index record_shares_grantee_idx on record_shares (organization_id, grantee_id, entity, record_id);

-- `own` and `team` visibility read the owner and the creator: lists narrowed to them are
-- served by these indexes and the owner indexes made with the tables.
do $$
declare
    t text;
begin
    foreach t in array array['accounts', 'contacts', 'leads', 'opportunities', 'invoices', 'activities'] loop
        execute format('create index %I on %I (organization_id, created_by, id) where not is_deleted',
                       t || '_live_created_by_idx', t);
    end loop;
end
$$;

do $$
declare
    t text;
begin
    foreach t in array array['teams', 'team_members', 'permission_sets', 'record_shares'] loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format(
            'create policy tenant_isolation on %I
                 using (organization_id = nullif(current_setting(''crm.org_id'', true), '''')::uuid)
                 with check (organization_id = nullif(current_setting(''crm.org_id'', true), '''')::uuid)',
            t);
        execute format('grant select, insert, update, delete on %I to crm_app', t);
    end loop;
end
$$;
