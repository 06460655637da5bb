-- The same as migrations/postgres/0019_webhook_grants.sql: the permission set a webhook
-- subscription delivers with. SQLite cannot add a column with a composite foreign key: the
-- library checks it when it writes it.
alter table webhook_subscriptions add column permission_set_id blob;
