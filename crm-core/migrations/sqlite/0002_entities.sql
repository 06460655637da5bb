-- abetworks CRM, SQLite: custom field definitions, leads, pipelines and stages,
-- opportunities, invoices (with per-organization gap-free numbering) and activities.
-- The same schema as migrations/postgres/0002_entities.sql, in SQLite's types (see 0001).

create table custom_field_definitions (
    organization_id blob not null references organizations (id),
    id              blob not null,
    entity          text not null,
    key             text not null,
    label           text not null,
    field_type      text not null,
    required        integer not null default 0,
    options         text not null default '[]',
    default_value   text,
    archived        integer not null default 0,
    created_at      text not null,
    updated_at      text not null,
    version         integer not null default 1,
    primary key (organization_id, id),
    unique (organization_id, entity, key)
) strict;

create table pipelines (
    organization_id blob not null references organizations (id),
    id              blob not null,
    name            text not null,
    is_default      integer not null default 0,
    created_at      text not null,
    updated_at      text not null,
    version         integer not null default 1,
    primary key (organization_id, id)
) strict;
-- At most one default pipeline per organization.
create unique index pipelines_default_key on pipelines (organization_id) where is_default;

create table pipeline_stages (
    organization_id blob not null,
    id              blob not null,
    pipeline_id     blob not null,
    name            text not null,
    position        integer not null,
    probability     integer not null check (probability between 0 and 100),
    kind            text not null check (kind in ('open', 'won', 'lost')),
    primary key (organization_id, id),
    foreign key (organization_id, pipeline_id) references pipelines (organization_id, id) on delete cascade,
    unique (organization_id, pipeline_id, position)
) strict;

create table leads (
    organization_id          blob not null references organizations (id),
    id                       blob not null,
    created_at               text not null,
    updated_at               text not null,
    created_by               blob,
    updated_by               blob,
    version                  integer not null default 1,
    is_deleted               integer not null default 0,
    deleted_at               text,
    deleted_by               blob,
    custom_fields            text not null default '{}' check (json_type(custom_fields) = 'object'),
    first_name               text,
    last_name                text,
    email                    text,
    phone                    text,
    company                  text,
    title                    text,
    source                   text not null,
    status                   text not null,
    owner_id                 blob,
    converted_at             text,
    converted_account_id     blob,
    converted_contact_id     blob,
    converted_opportunity_id blob,
    primary key (organization_id, id),
    foreign key (organization_id, owner_id) references users (organization_id, id),
    foreign key (organization_id, converted_account_id) references accounts (organization_id, id),
    foreign key (organization_id, converted_contact_id) references contacts (organization_id, id),
    -- opportunities is created below; SQLite resolves foreign keys when they are used.
    foreign key (organization_id, converted_opportunity_id) references opportunities (organization_id, id)
) strict;
create index leads_live_id_idx on leads (organization_id, id) where not is_deleted;
create index leads_live_last_name_idx on leads (organization_id, last_name, id) where not is_deleted;
create index leads_live_first_name_idx on leads (organization_id, first_name, id) where not is_deleted;
create index leads_live_email_idx on leads (organization_id, email, id) where not is_deleted;
create index leads_live_company_idx on leads (organization_id, company, id) where not is_deleted;
create index leads_live_status_idx on leads (organization_id, status, id) where not is_deleted;
create index leads_live_created_idx on leads (organization_id, created_at, id) where not is_deleted;
create index leads_live_updated_idx on leads (organization_id, updated_at, id) where not is_deleted;
create index leads_owner_idx on leads (organization_id, owner_id);

create table opportunities (
    organization_id     blob not null references organizations (id),
    id                  blob not null,
    created_at          text not null,
    updated_at          text not null,
    created_by          blob,
    updated_by          blob,
    version             integer not null default 1,
    is_deleted          integer not null default 0,
    deleted_at          text,
    deleted_by          blob,
    custom_fields       text not null default '{}' check (json_type(custom_fields) = 'object'),
    name                text not null,
    account_id          blob,
    primary_contact_id  blob,
    owner_id            blob,
    pipeline_id         blob not null,
    stage_id            blob not null,
    amount_minor        integer,
    currency            text,
    expected_close_date text,
    description         text,
    status              text not null,
    probability         integer,
    closed_at           text,
    lost_reason         text,
    primary key (organization_id, id),
    foreign key (organization_id, account_id) references accounts (organization_id, id),
    foreign key (organization_id, primary_contact_id) references contacts (organization_id, id),
    foreign key (organization_id, owner_id) references users (organization_id, id),
    foreign key (organization_id, pipeline_id) references pipelines (organization_id, id),
    foreign key (organization_id, stage_id) references pipeline_stages (organization_id, id)
) strict;
create index opportunities_live_id_idx on opportunities (organization_id, id) where not is_deleted;
create index opportunities_live_name_idx on opportunities (organization_id, name, id) where not is_deleted;
create index opportunities_live_amount_idx on opportunities (organization_id, amount_minor, id) where not is_deleted;
create index opportunities_live_close_idx on opportunities (organization_id, expected_close_date, id) where not is_deleted;
create index opportunities_live_status_idx on opportunities (organization_id, status, id) where not is_deleted;
create index opportunities_live_created_idx on opportunities (organization_id, created_at, id) where not is_deleted;
create index opportunities_live_updated_idx on opportunities (organization_id, updated_at, id) where not is_deleted;
-- The pipeline summary groups live opportunities of one pipeline by stage.
create index opportunities_live_stage_idx on opportunities (organization_id, pipeline_id, stage_id) where not is_deleted;
create index opportunities_account_idx on opportunities (organization_id, account_id);
create index opportunities_contact_idx on opportunities (organization_id, primary_contact_id);
create index opportunities_owner_idx on opportunities (organization_id, owner_id);

create table invoices (
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
    account_id      blob not null,
    opportunity_id  blob,
    currency        text not null,
    issue_date      text,
    due_date        text,
    line_items      text not null default '[]' check (json_type(line_items) = 'array'),
    notes           text,
    number          text not null,
    status          text not null,
    subtotal_minor  integer not null,
    tax_minor       integer not null,
    total_minor     integer not null,
    sent_at         text,
    paid_at         text,
    voided_at       text,
    primary key (organization_id, id),
    unique (organization_id, number),
    foreign key (organization_id, account_id) references accounts (organization_id, id),
    foreign key (organization_id, opportunity_id) references opportunities (organization_id, id)
) strict;
create index invoices_live_id_idx on invoices (organization_id, id) where not is_deleted;
create index invoices_live_number_idx on invoices (organization_id, number, id) where not is_deleted;
create index invoices_live_status_idx on invoices (organization_id, status, id) where not is_deleted;
create index invoices_live_due_idx on invoices (organization_id, due_date, id) where not is_deleted;
create index invoices_live_total_idx on invoices (organization_id, total_minor, id) where not is_deleted;
create index invoices_live_created_idx on invoices (organization_id, created_at, id) where not is_deleted;
create index invoices_live_updated_idx on invoices (organization_id, updated_at, id) where not is_deleted;
create index invoices_account_idx on invoices (organization_id, account_id);
create index invoices_opportunity_idx on invoices (organization_id, opportunity_id);

-- Gap-free numbering: the counter row is locked by the upsert that takes the next number, so
-- concurrent creators queue, and a rolled-back invoice gives its number back.
create table invoice_counters (
    organization_id blob primary key references organizations (id),
    last_number     integer not null
) strict;

create table activities (
    organization_id  blob not null references organizations (id),
    id               blob not null,
    created_at       text not null,
    updated_at       text not null,
    created_by       blob,
    updated_by       blob,
    version          integer not null default 1,
    is_deleted       integer not null default 0,
    deleted_at       text,
    deleted_by       blob,
    custom_fields    text not null default '{}' check (json_type(custom_fields) = 'object'),
    kind             text not null,
    subject          text not null,
    body             text,
    related_entity   text not null,
    related_id       blob not null,
    due_at           text,
    occurred_at      text,
    duration_minutes integer,
    assignee_id      blob,
    completed_at     text,
    primary key (organization_id, id),
    foreign key (organization_id, assignee_id) references users (organization_id, id)
) strict;
create index activities_live_id_idx on activities (organization_id, id) where not is_deleted;
create index activities_live_related_idx on activities (organization_id, related_entity, related_id, id) where not is_deleted;
create index activities_live_due_idx on activities (organization_id, due_at, id) where not is_deleted;
create index activities_live_kind_idx on activities (organization_id, kind, id) where not is_deleted;
create index activities_live_subject_idx on activities (organization_id, subject, id) where not is_deleted;
create index activities_live_created_idx on activities (organization_id, created_at, id) where not is_deleted;
create index activities_live_updated_idx on activities (organization_id, updated_at, id) where not is_deleted;
create index activities_assignee_idx on activities (organization_id, assignee_id);
