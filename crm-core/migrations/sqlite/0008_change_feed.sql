-- The change feed: the event log read in commit order, per organization.
--
-- SQLite runs one writing transaction at a time (every write here begins `immediate`), so a
-- position taken while writing is already in commit order: each append of events takes the
-- next position of its organization from `feed_heads` and stamps its rows with it.

alter table events add column position integer not null default 1;
create index events_feed_idx on events (organization_id, position, id);

create table feed_heads (
    organization_id blob not null references organizations (id),
    position        integer not null,
    primary key (organization_id)
);

-- What was logged before the feed existed is its first position.
insert into feed_heads (organization_id, position)
    select distinct organization_id, 1 from events;
