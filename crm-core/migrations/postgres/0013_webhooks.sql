-- Outbound webhooks: an organization's subscriptions and the log of their deliveries.
--
-- The change feed is the outbox. Each subscription keeps the feed cursor up to which events
-- became deliveries, and moves it in the same transaction as it writes them, so a crash between
-- a data commit and its delivery loses nothing: the next worker reads the feed from the cursor.

create table webhook_subscriptions (
    organization_id       uuid not null references organizations (id),
    id                    uuid not null,
    url                   text not null,
    description           text not null default '',
    -- JSON array of event types (`contact.created`, `contact.*`); empty: every event.
    event_types           text not null default '[]',
    active                boolean not null default true,
    -- `whsec_…`: the HMAC key of the Standard Webhooks signature. Kept as is, because signing
    -- needs it; never returned after creation or rotation.
    secret                text not null,
    -- The secret before the last rotation, also signed with until `previous_secret_until`.
    previous_secret       text,
    previous_secret_until timestamptz,
    -- Feed cursor (`position.event`) through which events became deliveries.
    feed_cursor           text not null,
    -- The first failure since the last success; sustained failure disables the subscription.
    failing_since         timestamptz,
    disabled_reason       text,
    disabled_at           timestamptz,
    created_by            uuid,
    created_at            timestamptz not null,
    updated_at            timestamptz not null,
    primary key (organization_id, id)
);

create table webhook_deliveries (
    organization_id uuid not null,
    id              uuid not null,
    subscription_id uuid not null,
    -- The event delivered: also the `webhook-id` the receiver de-duplicates on.
    event_id        uuid not null,
    event_type      text not null,
    record_id       uuid not null,
    feed_position   bigint not null,
    occurred_at     timestamptz not null,
    status          text not null default 'pending'
                    check (status in ('pending', 'delivered', 'failed')),
    attempts        integer not null default 0,
    next_attempt_at timestamptz not null,
    -- A worker sending it holds it until then; a worker killed mid-delivery lets it go there.
    leased_until    timestamptz,
    -- Retries stop this long after (the worker's give-up window); a replay starts it again.
    retry_from      timestamptz,
    last_attempt_at timestamptz,
    response_status integer,
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz not null,
    primary key (organization_id, id),
    unique (organization_id, subscription_id, event_id),
    foreign key (organization_id, subscription_id)
        references webhook_subscriptions (organization_id, id) on delete cascade
);
-- Due deliveries, and the earlier pending one of the same record that holds a later one back.
create index webhook_deliveries_due_idx on webhook_deliveries (organization_id, next_attempt_at)
    where status = 'pending';
create index webhook_deliveries_record_idx
    on webhook_deliveries (organization_id, subscription_id, record_id, feed_position)
    where status = 'pending';
-- The delivery log of a subscription, newest first.
create index webhook_deliveries_log_idx on webhook_deliveries (organization_id, subscription_id, id);

select crm_isolate_tenant_table('webhook_subscriptions');
select crm_isolate_tenant_table('webhook_deliveries');
grant select, insert, update, delete on webhook_subscriptions, webhook_deliveries to crm_app;

-- How many subscriptions an organization has, kept with them: the worker's one global read
-- of which organizations to deliver for (the subscriptions themselves are tenant rows).
alter table organizations
    add column webhook_subscriptions integer not null default 0
    check (webhook_subscriptions >= 0);
