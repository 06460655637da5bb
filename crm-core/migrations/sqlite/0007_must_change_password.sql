-- A password set by someone else (a company admin, or an operator with `crm user set-password`)
-- is temporary: its user must choose their own at the next sign-in (issue 13). While the flag is
-- set, the user's access tokens reach only `POST me/password` and `GET me` (crm-axum's auth
-- layer reads the flag with the user's role and activity, in the same query); changing one's own
-- password clears it. Existing users keep the passwords they have: `false` (0).
alter table users add column must_change_password integer not null default 0;
