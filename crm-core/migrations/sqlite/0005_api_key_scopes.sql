-- What an API key may do (issue 10: a key made for web forms could read and rewrite the whole
-- CRM). Scopes are space-separated text, the same on both backends: `forms`,
-- `<entity>:read`, `<entity>:write` (entities from the registry), or `all`.
--
-- Keys made before this migration keep the access they had: `all`. The default exists only to
-- fill those rows (SQLite cannot drop a column default); the library always writes the scopes
-- chosen at creation.
alter table api_keys add column scopes text not null default 'all';
