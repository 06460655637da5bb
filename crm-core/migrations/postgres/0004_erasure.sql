-- Erasure (GDPR): the application may blank the `changes` of events about an erased person.
-- Only that column: the event log stays append-only in every other respect (no delete, no
-- change of who did what when).
grant update (changes) on events to crm_app;
