-- Duplicates and merge: the same schema as migrations/postgres/0014_duplicates_and_merge.sql
-- (unique custom field values, match keys, redirects of merged records).

alter table custom_field_definitions add column is_unique integer not null default 0;

create table custom_field_unique_values (
    organization_id blob not null references organizations (id),
    entity          text not null,
    key             text not null,
    value           text not null,
    record_id       blob not null,
    primary key (organization_id, entity, key, value)
) strict;
create index custom_field_unique_values_record_idx
    on custom_field_unique_values (organization_id, entity, record_id);

create table record_match_keys (
    organization_id blob not null references organizations (id),
    entity          text not null,
    rule            text not null,
    value           text not null,
    record_id       blob not null,
    primary key (organization_id, entity, rule, value, record_id)
) strict;
create index record_match_keys_record_idx
    on record_match_keys (organization_id, entity, record_id);

create table record_redirects (
    organization_id blob not null references organizations (id),
    entity          text not null,
    id              blob not null,
    survivor_id     blob not null,
    merged_at       text not null,
    primary key (organization_id, entity, id)
) strict;
create index record_redirects_survivor_idx
    on record_redirects (organization_id, entity, survivor_id);
