-- The access model: the same schema as migrations/postgres/0017_access.sql (teams and their
-- members, permission sets, the permission set of each user and API key, records shared with a
-- user or a team). SQLite cannot add a column with a composite foreign key, so the library
-- checks `permission_set_id` and `user_id` when it writes them.

create table teams (
    organization_id blob not null references organizations (id),
    id              blob not null,
    name            text not null,
    description     text not null default '',
    manager_id      blob,
    version         integer not null default 1,
    created_at      text not null,
    updated_at      text not null,
    primary key (organization_id, id),
    foreign key (organization_id, manager_id) references users (organization_id, id)
) strict;
create unique index teams_name_key on teams (organization_id, lower(name));

create table team_members (
    organization_id blob not null,
    team_id         blob not null,
    user_id         blob not null,
    added_at        text not null,
    primary key (organization_id, team_id, user_id),
    foreign key (organization_id, team_id) references teams (organization_id, id) on delete cascade,
    foreign key (organization_id, user_id) references users (organization_id, id)
) strict;
create index team_members_user_idx on team_members (organization_id, user_id);

create table permission_sets (
    organization_id blob not null references organizations (id),
    id              blob not null,
    name            text not null,
    description     text not null default '',
    entities        text not null default '{}',
    fields          text not null default '{}',
    version         integer not null default 1,
    created_at      text not null,
    updated_at      text not null,
    primary key (organization_id, id)
) strict;
create unique index permission_sets_name_key on permission_sets (organization_id, lower(name));

alter table users add column permission_set_id blob;
alter table api_keys add column permission_set_id blob;
alter table api_keys add column user_id blob;

create table record_shares (
    organization_id blob not null,
    entity          text not null,
    record_id       blob not null,
    grantee_kind    text not null check (grantee_kind in ('user', 'team')),
    grantee_id      blob not null,
    access          text not null check (access in ('read', 'write')),
    created_by      blob,
    created_at      text not null,
    primary key (organization_id, entity, record_id, grantee_id)
) strict;
create index record_shares_grantee_idx on record_shares (organization_id, grantee_id, entity, record_id);

create index accounts_live_created_by_idx on accounts (organization_id, created_by, id) where not is_deleted;
create index contacts_live_created_by_idx on contacts (organization_id, created_by, id) where not is_deleted;
create index leads_live_created_by_idx on leads (organization_id, created_by, id) where not is_deleted;
create index opportunities_live_created_by_idx on opportunities (organization_id, created_by, id) where not is_deleted;
create index invoices_live_created_by_idx on invoices (organization_id, created_by, id) where not is_deleted;
create index activities_live_created_by_idx on activities (organization_id, created_by, id) where not is_deleted;
