-- Outbound webhooks: the same schema as migrations/postgres/0013_webhooks.sql (subscriptions,
-- the delivery log, and each organization's count of subscriptions).

create table webhook_subscriptions (
    organization_id       blob not null references organizations (id),
    id                    blob not null,
    url                   text not null,
    description           text not null default '',
    event_types           text not null default '[]',
    active                integer not null default 1,
    secret                text not null,
    previous_secret       text,
    previous_secret_until text,
    feed_cursor           text not null,
    failing_since         text,
    disabled_reason       text,
    disabled_at           text,
    created_by            blob,
    created_at            text not null,
    updated_at            text not null,
    primary key (organization_id, id)
) strict;

create table webhook_deliveries (
    organization_id blob not null,
    id              blob not null,
    subscription_id blob not null,
    event_id        blob not null,
    event_type      text not null,
    record_id       blob not null,
    feed_position   integer not null,
    occurred_at     text not null,
    status          text not null default 'pending'
                    check (status in ('pending', 'delivered', 'failed')),
    attempts        integer not null default 0,
    next_attempt_at text not null,
    leased_until    text,
    retry_from      text,
    last_attempt_at text,
    response_status integer,
    last_error      text,
    delivered_at    text,
    created_at      text not null,
    primary key (organization_id, id),
    unique (organization_id, subscription_id, event_id),
    foreign key (organization_id, subscription_id)
        references webhook_subscriptions (organization_id, id) on delete cascade
) strict;
create index webhook_deliveries_due_idx on webhook_deliveries (organization_id, next_attempt_at)
    where status = 'pending';
create index webhook_deliveries_record_idx
    on webhook_deliveries (organization_id, subscription_id, record_id, feed_position)
    where status = 'pending';
create index webhook_deliveries_log_idx on webhook_deliveries (organization_id, subscription_id, id);

alter table organizations
    add column webhook_subscriptions integer not null default 0
    check (webhook_subscriptions >= 0);
