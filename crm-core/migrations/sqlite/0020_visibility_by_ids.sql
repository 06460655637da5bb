-- Record visibility by id lists is PostgreSQL's (see the PostgreSQL migration of the same
-- number). SQLite has no policies; a list narrowed to one person's records reads the owner's
-- live records in order, as on PostgreSQL.
create index accounts_live_owner_idx on accounts (organization_id, owner_id, id) where not is_deleted;
create index contacts_live_owner_idx on contacts (organization_id, owner_id, id) where not is_deleted;
create index leads_live_owner_idx on leads (organization_id, owner_id, id) where not is_deleted;
create index opportunities_live_owner_idx on opportunities (organization_id, owner_id, id) where not is_deleted;
create index activities_live_assignee_idx on activities (organization_id, assignee_id, id) where not is_deleted;
