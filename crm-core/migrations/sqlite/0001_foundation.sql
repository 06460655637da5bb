-- abetworks CRM, SQLite: the same schema as migrations/postgres/0001_foundation.sql.
-- Types: uuid -> BLOB (16 bytes), timestamptz -> TEXT (RFC 3339, UTC), jsonb -> TEXT (checked
-- JSON), boolean -> INTEGER. STRICT tables reject values of the wrong type.
-- SQLite has no row-level security: tenancy rests on the library's organization_id filters,
-- the composite keys, and the tests that attack both.

create table organizations (
    id          blob primary key,
    name        text not null,
    slug        text not null unique,
    status      text not null default 'active' check (status in ('active', 'suspended')),
    created_at  text not null,
    updated_at  text not null
) strict;

create table users (
    organization_id blob not null references organizations (id),
    id              blob not null,
    email           text not null,
    name            text not null,
    password_hash   text,
    role            text not null check (role in ('user', 'company_admin', 'super_admin')),
    is_active       integer not null default 1,
    created_at      text not null,
    updated_at      text not null,
    version         integer not null default 1,
    primary key (organization_id, id)
) strict;
create unique index users_email_key on users (organization_id, lower(email));

create table accounts (
    organization_id         blob not null references organizations (id),
    id                      blob not null,
    created_at              text not null,
    updated_at              text not null,
    created_by              blob,
    updated_by              blob,
    version                 integer not null default 1,
    is_deleted              integer not null default 0,
    deleted_at              text,
    deleted_by              blob,
    custom_fields           text not null default '{}' check (json_type(custom_fields) = 'object'),
    name                    text not null,
    domain                  text,
    website                 text,
    industry                text,
    phone                   text,
    street                  text,
    city                    text,
    region                  text,
    postal_code             text,
    country                 text,
    employee_count          integer,
    annual_revenue_minor    integer,
    annual_revenue_currency text,
    owner_id                blob,
    primary key (organization_id, id),
    foreign key (organization_id, owner_id) references users (organization_id, id)
) strict;
create index accounts_live_name_idx on accounts (organization_id, name, id) where not is_deleted;
create index accounts_live_domain_idx on accounts (organization_id, domain, id) where not is_deleted;
create index accounts_live_created_idx on accounts (organization_id, created_at, id) where not is_deleted;
create index accounts_live_updated_idx on accounts (organization_id, updated_at, id) where not is_deleted;
create index accounts_owner_idx on accounts (organization_id, owner_id);

create table contacts (
    organization_id blob not null references organizations (id),
    id              blob not null,
    created_at      text not null,
    updated_at      text not null,
    created_by      blob,
    updated_by      blob,
    version         integer not null default 1,
    is_deleted      integer not null default 0,
    deleted_at      text,
    deleted_by      blob,
    custom_fields   text not null default '{}' check (json_type(custom_fields) = 'object'),
    first_name      text,
    last_name       text,
    email           text,
    phone           text,
    mobile          text,
    title           text,
    account_id      blob,
    owner_id        blob,
    primary key (organization_id, id),
    foreign key (organization_id, account_id) references accounts (organization_id, id),
    foreign key (organization_id, owner_id) references users (organization_id, id)
) strict;
create index contacts_live_last_name_idx on contacts (organization_id, last_name, id) where not is_deleted;
create index contacts_live_first_name_idx on contacts (organization_id, first_name, id) where not is_deleted;
create index contacts_live_email_idx on contacts (organization_id, email, id) where not is_deleted;
create index contacts_live_created_idx on contacts (organization_id, created_at, id) where not is_deleted;
create index contacts_live_updated_idx on contacts (organization_id, updated_at, id) where not is_deleted;
create index contacts_account_idx on contacts (organization_id, account_id);
create index contacts_owner_idx on contacts (organization_id, owner_id);

create table events (
    organization_id blob not null references organizations (id),
    id              blob not null,
    entity          text not null,
    record_id       blob not null,
    action          text not null,
    actor_kind      text not null check (actor_kind in ('user', 'api_key', 'system')),
    actor_id        blob,
    changes         text not null default '{}' check (json_valid(changes)),
    occurred_at     text not null,
    primary key (organization_id, id)
) strict;
create index events_record_idx on events (organization_id, entity, record_id, id);
