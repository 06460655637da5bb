#!/usr/bin/env bash
# The database's own floor for seeding contacts: what PostgreSQL takes to insert the rows that
# `crm seed` writes for its contacts phase (each contact, its `created` event, the commit's
# change-feed stamp), written as plain set-based SQL with no client in the way. Same schema,
# indexes, triggers, row-level security (as `crm_app`) and transaction size (one organization's
# contacts each) as `crm seed --batch 10000`; JOBS sessions at once, like `crm seed --jobs`.
#
#   benches/seed/floor.sh                  # 100 organizations × 10,000 contacts, 2 sessions
#   ORGS=10 RECORDS=1000 benches/seed/floor.sh
#
# Knobs:
#   ADMIN_URL   server URL of a superuser, no database (postgres://postgres@127.0.0.1:5432)
#   CRM_FLOOR_DB  database to drop and create (crm_seed_floor)
#   CRM_BIN     the `crm` binary that migrates it and creates the organizations (target/release/crm)
#   ORGS, RECORDS, JOBS   organizations, contacts per organization, parallel sessions (100, 10000, 2)
set -euo pipefail

ADMIN_URL=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432}
DB=${CRM_FLOOR_DB:-crm_seed_floor}
CRM_BIN=${CRM_BIN:-target/release/crm}
ORGS=${ORGS:-100}
RECORDS=${RECORDS:-10000}
JOBS=${JOBS:-2}
URL="$ADMIN_URL/$DB?sslmode=disable"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

psql -q "$ADMIN_URL/postgres" -c "drop database if exists $DB" -c "create database $DB"
# Organizations with their admin, custom fields and one account each, through the library.
"$CRM_BIN" --database-url "$URL" seed --orgs "$ORGS" --records 0 --seed 1 --json >/dev/null
# The other accounts (a tenth of the contacts, as `crm seed`), and UUIDv7 ids as the library
# makes them (time-ordered: inserts append to the primary key instead of splitting pages).
psql -q -v ON_ERROR_STOP=1 "$URL" <<SQL
create function uuid7() returns uuid language sql volatile as \$\$
    select encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing
        substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
        from 1 for 6), 52, 1), 53, 1), 'hex')::uuid
\$\$;
insert into accounts (organization_id, id, created_at, updated_at, name, custom_fields)
    select o.id, uuid7(), now(), now(), 'Account ' || g, '{"tier": "gold"}'
    from organizations o, generate_series(2, greatest($RECORDS / 10, 1)) g;
vacuum analyze;
SQL
psql -Atq "$URL" -c "select id from organizations order by slug" > "$work/orgs"

# One transaction per organization: its contacts and their events, in one statement.
contacts_sql() {
    cat <<SQL
select set_config('crm.org_id', '$1', false);
begin;
with acc as (select array_agg(id) ids from accounts where organization_id = '$1'),
rows as (
    select uuid7() id, g, 'First' || (g % 16) f, 'Last' || (g % 13) l,
           acc.ids[1 + floor(random() * array_length(acc.ids, 1))::int] account,
           floor(random() * 100)::int score
    from generate_series(1, $RECORDS) g, acc
),
c as (
    insert into contacts (organization_id, id, created_at, updated_at, version, is_deleted,
                          custom_fields, first_name, last_name, email, title, account_id)
    select '$1', id, now(), now(), 1, false, jsonb_build_object('score', score), f, l,
           lower(f) || '.' || lower(l) || '.' || g || '@example.test', 'Engineer', account
    from rows
    returning id, first_name, last_name, email, title, account_id, custom_fields
)
insert into events (organization_id, id, entity, record_id, action, actor_kind, changes, occurred_at)
select '$1', uuid7(), 'contact', id, 'created', 'system',
       jsonb_build_object('first_name', jsonb_build_object('after', first_name),
                          'last_name', jsonb_build_object('after', last_name),
                          'email', jsonb_build_object('after', email),
                          'title', jsonb_build_object('after', title),
                          'account_id', jsonb_build_object('after', account_id),
                          'custom_fields.score', jsonb_build_object('after', custom_fields -> 'score')),
       now()
from c;
commit;
SQL
}

start=$(date +%s.%N)
for j in $(seq 0 $((JOBS - 1))); do
    {
        echo "set role crm_app;"
        awk -v jobs="$JOBS" -v j="$j" 'NR % jobs == j' "$work/orgs" | while read -r org; do
            contacts_sql "$org"
        done
    } | psql -q -v ON_ERROR_STOP=1 "$URL" >/dev/null &
done
wait
end=$(date +%s.%N)
count=$(psql -Atq "$URL" -c "select count(*) from contacts")
events=$(psql -Atq "$URL" -c "select count(*) from events where entity = 'contact'")
echo "floor: $count contacts and $events events in $(echo "$end - $start" | bc) s ($JOBS sessions)"
