-- Duplicates and merge: unique custom fields enforced by the database, the keys duplicate
-- detection looks records up by, and the redirects merged records leave behind.

-- Whether a custom field's values are unique among the records of its entity.
alter table custom_field_definitions add column is_unique boolean not null default false;

-- One row per record and unique custom field with a value, in a canonical text form (emails
-- lower-cased, numbers so that 1 and 1.0 are the same; long values as their SHA-256). The primary
-- key is the constraint; a record without a value has no row, so absent values never collide.
-- Soft-deleted records keep their rows (a restore can never collide); purge and erasure remove
-- them; a merge frees the absorbed records' values.
create table custom_field_unique_values (
    organization_id uuid not null references organizations (id),
    entity          text not null,
    key             text not null,
    value           text not null,
    record_id       uuid not null,
    primary key (organization_id, entity, key, value)
);
create index custom_field_unique_values_record_idx
    on custom_field_unique_values (organization_id, entity, record_id);

-- The keys duplicate detection finds records by (`email`, `domain`, `name`: normalized), kept by
-- the same write path as the unique values.
create table record_match_keys (
    organization_id uuid not null references organizations (id),
    entity          text not null,
    rule            text not null,
    value           text not null,
    record_id       uuid not null,
    primary key (organization_id, entity, rule, value, record_id)
);
create index record_match_keys_record_idx
    on record_match_keys (organization_id, entity, record_id);

-- A merged record's id answers with its survivor (HTTP 308). Chains are collapsed when merged
-- again: `survivor_id` is always a record that was not merged.
create table record_redirects (
    organization_id uuid not null references organizations (id),
    entity          text not null,
    id              uuid not null,
    survivor_id     uuid not null,
    merged_at       timestamptz not null,
    primary key (organization_id, entity, id)
);
create index record_redirects_survivor_idx
    on record_redirects (organization_id, entity, survivor_id);

select crm_isolate_tenant_table('custom_field_unique_values');
select crm_isolate_tenant_table('record_match_keys');
select crm_isolate_tenant_table('record_redirects');
grant select, insert, update, delete
    on custom_field_unique_values, record_match_keys, record_redirects to crm_app;
