-- Record visibility is enforced by PostgreSQL's row-level security (see the PostgreSQL
-- migration of the same number); SQLite has no policies: the library's own conditions are
-- the only ones there.
select 1;
