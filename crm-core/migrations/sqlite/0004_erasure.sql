-- Erasure (GDPR): nothing to change on SQLite, which has no roles; kept so that both backends
-- carry the same migration numbers (see migrations/README.md).
select 1;
