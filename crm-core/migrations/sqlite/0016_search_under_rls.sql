-- Nothing on SQLite: it has no row-level security, and its FTS5 search (0009_search) already
-- reads its index. (PostgreSQL's 0016 lets its full-text search use the GIN index under
-- row-level security.)
select 1;
