-- abetworks CRM, SQLite: Idempotency-Key records belong to the caller that made them; `erased`
-- records keep no response (see the PostgreSQL migration of the same number). Keys of requests
-- made before the upgrade are forgotten (they live at most a day).
drop table idempotency_keys;
create table idempotency_keys (
    organization_id  blob not null references organizations (id),
    caller           text not null,
    key              text not null,
    fingerprint      text not null,
    status           text not null check (status in ('pending', 'done', 'erased')),
    response_status  integer,
    response_headers text,
    response_body    text,
    created_at       text not null,
    expires_at       text not null,
    primary key (organization_id, caller, key)
) strict;
create index idempotency_keys_expiry_idx on idempotency_keys (organization_id, expires_at);
create index refresh_tokens_expiry_idx on refresh_tokens (organization_id, expires_at);
