-- abetworks CRM, PostgreSQL: Idempotency-Key records belong to the caller that made them (a
-- user, an API key), not to the whole organization: another caller repeating a key runs its own
-- request. A record whose response named an erased person is kept as `erased` (no response), so a
-- repeat neither replays the person nor writes again.
--
-- The records live at most a day (the TTL): the table is recreated, and keys of requests made
-- before the upgrade are forgotten.
drop table idempotency_keys;
create table idempotency_keys (
    organization_id  uuid not null references organizations (id),
    caller           text not null,
    key              text not null,
    fingerprint      text not null,
    status           text not null check (status in ('pending', 'done', 'erased')),
    response_status  bigint,
    response_headers text,
    response_body    text,
    created_at       timestamptz not null,
    expires_at       timestamptz not null,
    primary key (organization_id, caller, key)
);
create index idempotency_keys_expiry_idx on idempotency_keys (organization_id, expires_at);
create index refresh_tokens_expiry_idx on refresh_tokens (organization_id, expires_at);

alter table idempotency_keys enable row level security;
alter table idempotency_keys force row level security;
create policy tenant_isolation on idempotency_keys
    using (organization_id = nullif(current_setting('crm.org_id', true), '')::uuid)
    with check (organization_id = nullif(current_setting('crm.org_id', true), '')::uuid);
grant select, insert, update, delete on idempotency_keys to crm_app;
