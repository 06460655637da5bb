-- abetworks CRM, PostgreSQL: custom field definitions, leads, pipelines and stages,
-- opportunities, invoices (with per-organization gap-free numbering) and activities.
-- Same conventions as 0001: (organization_id, id) keys, composite foreign keys, partial list
-- indexes on live rows, forced row-level security, grants to crm_app.

create table custom_field_definitions (
    organization_id uuid not null references organizations (id),
    id              uuid not null,
    entity          text not null,
    key             text not null,
    label           text not null,
    field_type      text not null,
    required        boolean not null default false,
    options         jsonb not null default '[]',
    default_value   jsonb,
    archived        boolean not null default false,
    created_at      timestamptz not null,
    updated_at      timestamptz not null,
    version         bigint not null default 1,
    primary key (organization_id, id),
    unique (organization_id, entity, key)
);

create table pipelines (
    organization_id uuid not null references organizations (id),
    id              uuid not null,
    name            text not null,
    is_default      boolean not null default false,
    created_at      timestamptz not null,
    updated_at      timestamptz not null,
    version         bigint not null default 1,
    primary key (organization_id, id)
);
-- At most one default pipeline per organization.
create unique index pipelines_default_key on pipelines (organization_id) where is_default;

create table pipeline_stages (
    organization_id uuid not null,
    id              uuid not null,
    pipeline_id     uuid not null,
    name            text not null,
    position        integer not null,
    probability     bigint not null check (probability between 0 and 100),
    kind            text not null check (kind in ('open', 'won', 'lost')),
    primary key (organization_id, id),
    foreign key (organization_id, pipeline_id) references pipelines (organization_id, id) on delete cascade,
    unique (organization_id, pipeline_id, position)
);

create table leads (
    organization_id          uuid not null references organizations (id),
    id                       uuid not null,
    created_at               timestamptz not null,
    updated_at               timestamptz not null,
    created_by               uuid,
    updated_by               uuid,
    version                  bigint not null default 1,
    is_deleted               boolean not null default false,
    deleted_at               timestamptz,
    deleted_by               uuid,
    custom_fields            jsonb not null default '{}' check (jsonb_typeof(custom_fields) = 'object'),
    first_name               text,
    last_name                text,
    email                    text,
    phone                    text,
    company                  text,
    title                    text,
    source                   text not null,
    status                   text not null,
    owner_id                 uuid,
    converted_at             timestamptz,
    converted_account_id     uuid,
    converted_contact_id     uuid,
    converted_opportunity_id uuid,
    primary key (organization_id, id),
    foreign key (organization_id, owner_id) references users (organization_id, id),
    foreign key (organization_id, converted_account_id) references accounts (organization_id, id),
    foreign key (organization_id, converted_contact_id) references contacts (organization_id, id)
);
create index leads_live_id_idx on leads (organization_id, id) where not is_deleted;
create index leads_live_last_name_idx on leads (organization_id, last_name, id) where not is_deleted;
create index leads_live_first_name_idx on leads (organization_id, first_name, id) where not is_deleted;
create index leads_live_email_idx on leads (organization_id, email, id) where not is_deleted;
create index leads_live_company_idx on leads (organization_id, company, id) where not is_deleted;
create index leads_live_status_idx on leads (organization_id, status, id) where not is_deleted;
create index leads_live_created_idx on leads (organization_id, created_at, id) where not is_deleted;
create index leads_live_updated_idx on leads (organization_id, updated_at, id) where not is_deleted;
create index leads_owner_idx on leads (organization_id, owner_id);
create index leads_custom_fields_idx on leads using gin (custom_fields jsonb_path_ops);

create table opportunities (
    organization_id     uuid not null references organizations (id),
    id                  uuid not null,
    created_at          timestamptz not null,
    updated_at          timestamptz not null,
    created_by          uuid,
    updated_by          uuid,
    version             bigint not null default 1,
    is_deleted          boolean not null default false,
    deleted_at          timestamptz,
    deleted_by          uuid,
    custom_fields       jsonb not null default '{}' check (jsonb_typeof(custom_fields) = 'object'),
    name                text not null,
    account_id          uuid,
    primary_contact_id  uuid,
    owner_id            uuid,
    pipeline_id         uuid not null,
    stage_id            uuid not null,
    amount_minor        bigint,
    currency            text,
    expected_close_date date,
    description         text,
    status              text not null,
    probability         bigint,
    closed_at           timestamptz,
    lost_reason         text,
    primary key (organization_id, id),
    foreign key (organization_id, account_id) references accounts (organization_id, id),
    foreign key (organization_id, primary_contact_id) references contacts (organization_id, id),
    foreign key (organization_id, owner_id) references users (organization_id, id),
    foreign key (organization_id, pipeline_id) references pipelines (organization_id, id),
    foreign key (organization_id, stage_id) references pipeline_stages (organization_id, id)
);
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
create index opportunities_custom_fields_idx on opportunities using gin (custom_fields jsonb_path_ops);

alter table leads add foreign key (organization_id, converted_opportunity_id)
    references opportunities (organization_id, id);

create table invoices (
    organization_id uuid not null references organizations (id),
    id              uuid not null,
    created_at      timestamptz not null,
    updated_at      timestamptz not null,
    created_by      uuid,
    updated_by      uuid,
    version         bigint not null default 1,
    is_deleted      boolean not null default false,
    deleted_at      timestamptz,
    deleted_by      uuid,
    custom_fields   jsonb not null default '{}' check (jsonb_typeof(custom_fields) = 'object'),
    account_id      uuid not null,
    opportunity_id  uuid,
    currency        text not null,
    issue_date      date,
    due_date        date,
    line_items      jsonb not null default '[]' check (jsonb_typeof(line_items) = 'array'),
    notes           text,
    number          text not null,
    status          text not null,
    subtotal_minor  bigint not null,
    tax_minor       bigint not null,
    total_minor     bigint not null,
    sent_at         timestamptz,
    paid_at         timestamptz,
    voided_at       timestamptz,
    primary key (organization_id, id),
    unique (organization_id, number),
    foreign key (organization_id, account_id) references accounts (organization_id, id),
    foreign key (organization_id, opportunity_id) references opportunities (organization_id, id)
);
create index invoices_live_id_idx on invoices (organization_id, id) where not is_deleted;
create index invoices_live_number_idx on invoices (organization_id, number, id) where not is_deleted;
create index invoices_live_status_idx on invoices (organization_id, status, id) where not is_deleted;
create index invoices_live_due_idx on invoices (organization_id, due_date, id) where not is_deleted;
create index invoices_live_total_idx on invoices (organization_id, total_minor, id) where not is_deleted;
create index invoices_live_created_idx on invoices (organization_id, created_at, id) where not is_deleted;
create index invoices_live_updated_idx on invoices (organization_id, updated_at, id) where not is_deleted;
create index invoices_account_idx on invoices (organization_id, account_id);
create index invoices_opportunity_idx on invoices (organization_id, opportunity_id);
create index invoices_custom_fields_idx on invoices using gin (custom_fields jsonb_path_ops);

-- Gap-free numbering: the counter row is locked by the upsert that takes the next number, so
-- concurrent creators queue, and a rolled-back invoice gives its number back.
create table invoice_counters (
    organization_id uuid primary key references organizations (id),
    last_number     bigint not null
);

create table activities (
    organization_id  uuid not null references organizations (id),
    id               uuid not null,
    created_at       timestamptz not null,
    updated_at       timestamptz not null,
    created_by       uuid,
    updated_by       uuid,
    version          bigint not null default 1,
    is_deleted       boolean not null default false,
    deleted_at       timestamptz,
    deleted_by       uuid,
    custom_fields    jsonb not null default '{}' check (jsonb_typeof(custom_fields) = 'object'),
    kind             text not null,
    subject          text not null,
    body             text,
    related_entity   text not null,
    related_id       uuid not null,
    due_at           timestamptz,
    occurred_at      timestamptz,
    duration_minutes bigint,
    assignee_id      uuid,
    completed_at     timestamptz,
    primary key (organization_id, id),
    foreign key (organization_id, assignee_id) references users (organization_id, id)
);
create index activities_live_id_idx on activities (organization_id, id) where not is_deleted;
create index activities_live_related_idx on activities (organization_id, related_entity, related_id, id) where not is_deleted;
create index activities_live_due_idx on activities (organization_id, due_at, id) where not is_deleted;
create index activities_live_kind_idx on activities (organization_id, kind, id) where not is_deleted;
create index activities_live_subject_idx on activities (organization_id, subject, id) where not is_deleted;
create index activities_live_created_idx on activities (organization_id, created_at, id) where not is_deleted;
create index activities_live_updated_idx on activities (organization_id, updated_at, id) where not is_deleted;
create index activities_assignee_idx on activities (organization_id, assignee_id);
create index activities_custom_fields_idx on activities using gin (custom_fields jsonb_path_ops);

do $$
declare
    t text;
begin
    foreach t in array array['custom_field_definitions', 'pipelines', 'pipeline_stages', 'leads',
                             'opportunities', 'invoices', 'invoice_counters', 'activities'] loop
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
