-- Change-feed retention: an operator may delete the commits (and their events) older than a
-- retention period (`Tenant::expire_changes`, `crm sweep --keep-changes-days`). `expired_through`
-- is the last deleted position of the organization and `expired_through_id` the last event id of
-- that commit: a reader whose cursor is before them missed changes that are gone, and is told so
-- (410 `cursor_expired`) instead of silently skipping them.
alter table feed_heads add column expired_through bigint not null default 0;
alter table feed_heads add column expired_through_id uuid;
