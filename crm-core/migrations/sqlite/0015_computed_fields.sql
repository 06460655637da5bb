-- Computed custom fields: a definition's formula (`{"formula": {"expression": …}}`) or roll-up
-- (`{"rollup": {"entity": …, "link": …, "function": …, "field": …, "filter": …}}`); null for a
-- stored field. Computed values are materialized into each record's `custom_fields`. (The
-- table's row-level security policy, migration 0002, covers the new column.)
alter table custom_field_definitions add column computed text;
