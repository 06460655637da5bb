-- abetworks CRM, SQLite: the same schema as migrations/postgres/0003_auth.sql (refresh tokens,
-- API keys, idempotency keys). Only hashes of secrets are stored.

create table refresh_tokens (
    organization_id blob not null references organizations (id),
    id              blob not null,
    family_id       blob not null,
    user_id         blob not null,
    secret_hash     text not null,
    created_at      text not null,
    expires_at      text not null,
    used_at         text,
    revoked_at      text,
    primary key (organization_id, id),
    foreign key (organization_id, user_id) references users (organization_id, id) on delete cascade
) strict;
create index refresh_tokens_family_idx on refresh_tokens (organization_id, family_id);

create table api_keys (
    organization_id blob not null references organizations (id),
    id              blob not null,
    name            text not null,
    prefix          text not null,
    secret_hash     text not null,
    created_by      blob,
    created_at      text not null,
    revoked_at      text,
    primary key (organization_id, id)
) strict;

create table idempotency_keys (
    organization_id  blob not null references organizations (id),
    key              text not null,
    fingerprint      text not null,
    status           text not null check (status in ('pending', 'done')),
    response_status  integer,
    response_headers text,
    response_body    text,
    created_at       text not null,
    expires_at       text not null,
    primary key (organization_id, key)
) strict;
create index idempotency_keys_expiry_idx on idempotency_keys (expires_at);
