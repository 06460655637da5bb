-- abetworks CRM, PostgreSQL: what the HTTP layer needs stored — refresh tokens (rotating, in
-- families), API keys, and idempotency keys. Number 0002 is reserved for the entity tables.
--
-- Secrets are never stored: refresh tokens and API keys keep only the SHA-256 of their random
-- secret (256 bits of entropy, so a fast hash is enough; argon2 is for low-entropy passwords).
-- Every table is a tenant table: the token text carries its organization's id, so a lookup binds
-- the session to that organization first and row-level security applies as everywhere else.

-- One row per refresh token ever issued. A login starts a family; each refresh uses one token
-- (used_at) and issues the next in the same family. Presenting a used or revoked token revokes
-- the whole family (it was stolen, or the client is confused: either way, sign in again).
create table refresh_tokens (
    organization_id uuid not null references organizations (id),
    id              uuid not null,
    family_id       uuid not null,
    user_id         uuid not null,
    secret_hash     text not null,
    created_at      timestamptz not null,
    expires_at      timestamptz not null,
    used_at         timestamptz,
    revoked_at      timestamptz,
    primary key (organization_id, id),
    foreign key (organization_id, user_id) references users (organization_id, id) on delete cascade
);
create index refresh_tokens_family_idx on refresh_tokens (organization_id, family_id);

-- Machine credentials of one organization. `prefix` is the non-secret start of the key, shown in
-- lists so people can tell keys apart.
create table api_keys (
    organization_id uuid not null references organizations (id),
    id              uuid not null,
    name            text not null,
    prefix          text not null,
    secret_hash     text not null,
    created_by      uuid,
    created_at      timestamptz not null,
    revoked_at      timestamptz,
    primary key (organization_id, id)
);

-- Idempotency-Key records (IETF httpapi idempotency-key draft): the first request's fingerprint
-- and, once it finished, its response, replayed to repeats until the record expires.
create table idempotency_keys (
    organization_id  uuid not null references organizations (id),
    key              text not null,
    fingerprint      text not null,
    status           text not null check (status in ('pending', 'done')),
    response_status  bigint,
    response_headers text,
    response_body    text,
    created_at       timestamptz not null,
    expires_at       timestamptz not null,
    primary key (organization_id, key)
);
create index idempotency_keys_expiry_idx on idempotency_keys (expires_at);

do $$
declare
    t text;
begin
    foreach t in array array['refresh_tokens', 'api_keys', 'idempotency_keys'] loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format(
            'create policy tenant_isolation on %I
                 using (organization_id = nullif(current_setting(''crm.org_id'', true), '''')::uuid)
                 with check (organization_id = nullif(current_setting(''crm.org_id'', true), '''')::uuid)',
            t);
    end loop;
    execute format('grant select, insert, update, delete on refresh_tokens, api_keys, idempotency_keys to crm_app');
end
$$;
