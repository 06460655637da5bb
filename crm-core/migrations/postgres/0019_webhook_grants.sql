-- A webhook subscription may name a permission set: its deliveries then carry what a holder of
-- that set may see (records out of its reach as tombstones, hidden fields removed), as the
-- change feed does for an API key with the set. Without one it delivers everything, as before.
alter table webhook_subscriptions add column permission_set_id uuid;
alter table webhook_subscriptions add foreign key (organization_id, permission_set_id)
    references permission_sets (organization_id, id);
