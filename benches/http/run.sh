#!/usr/bin/env bash
# HTTP load run: the example server (`crm serve`) on PostgreSQL with seeded data, measured with
# wrk for GET by id, list, search and create (JWT auth), with row-level security on and off,
# next to pgbench running the very SELECTs that GET by id and the list page send.
#
# Loopback only, bounded in time (DURATION per run). Everything shares this machine's cores.
#
#   benches/http/run.sh                 # 10 orgs x 10,000 contacts, 10 s per run, 32 connections
#   ORGS=100 RECORDS=10000 DURATION=30s CONNS=32 benches/http/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

ORGS=${ORGS:-10}
RECORDS=${RECORDS:-10000}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
DB=${CRM_LOAD_DB:-crm_load}
PORT=${PORT:-18080}
URL="postgres://postgres@127.0.0.1:5432/$DB"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME:-/root}/.cache/abetworks-crm-target}"
export CRM_JWT_SECRET="load-test-secret-load-test-secret-0123"
# One log line per request would measure the terminal, not the server.
export RUST_LOG=warn

command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y wrk >/dev/null; }
command -v pgbench >/dev/null || { echo "pgbench is needed (postgresql-contrib / postgresql client)"; exit 1; }
pg_isready -h 127.0.0.1 -p 5432 -q || pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start

cargo build --release -q -p crm-cli
CRM="$CARGO_TARGET_DIR/release/crm"
export DATABASE_URL="$URL"

if ! psql -h 127.0.0.1 -U postgres -lqt | cut -d'|' -f1 | grep -qw "$DB"; then
    createdb -h 127.0.0.1 -U postgres "$DB"
fi
if ! "$CRM" --json org list | grep -q '"seed-1-1"'; then
    echo "seeding $ORGS organizations x $RECORDS contacts"
    "$CRM" seed --orgs "$ORGS" --records "$RECORDS" --seed 1
    # Fresh statistics, or the planner guesses (and pgbench's literal SELECTs suffer first).
    psql -h 127.0.0.1 -U postgres -d "$DB" -qc "vacuum analyze"
fi

ORG_ID=$(psql -h 127.0.0.1 -U postgres -d "$DB" -Atc "select id from organizations where slug = 'seed-1-1'")
TOKEN=$("$CRM" token issue --org seed-1-1 --user admin@seed-1-1.test --minutes 120)
CONTACT=$(psql -h 127.0.0.1 -U postgres -d "$DB" -Atc \
    "select id from contacts where organization_id = '$ORG_ID' and not is_deleted order by id limit 1 offset 500")
API="http://127.0.0.1:$PORT/api/v1"

wrk_run() { # name, extra wrk args...
    local name=$1; shift
    local out
    out=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency -H "authorization: Bearer $TOKEN" "$@")
    local rps p50 p99
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    local errors
    errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    printf '| %-26s | %10s | %8s | %8s | %s\n' "$name" "$rps" "$p50" "$p99" "${errors:+non-2xx: $errors}"
}

serve() { # extra crm args
    "$CRM" "$@" serve --listen 127.0.0.1 --port "$PORT" >/tmp/crm-load-server.log 2>&1 &
    SERVER=$!
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "the server did not start"; cat /tmp/crm-load-server.log; exit 1
}

echo
echo "| run                        |  requests/s |      p50 |      p99 |"
echo "| -------------------------- | ----------: | -------: | -------: |"
for mode in rls no-rls; do
    if [ "$mode" = rls ]; then serve; else serve --no-rls; fi
    wrk_run "GET by id ($mode)" "$API/contacts/$CONTACT"
    wrk_run "list page ($mode)" "$API/contacts?limit=50"
    wrk_run "search ($mode)" -s benches/http/search.lua "$API/contacts/search"
    wrk_run "create ($mode)" -s benches/http/create.lua "$API/contacts"
    kill -TERM "$SERVER"; wait "$SERVER" || true
done

# The very SELECTs the two read paths send, straight to PostgreSQL (as the URL's role: no RLS).
cat >/tmp/crm-get.sql <<SQL
select * from contacts where organization_id = '$ORG_ID' and id = '$CONTACT' and not is_deleted;
SQL
cat >/tmp/crm-list.sql <<SQL
select * from contacts where organization_id = '$ORG_ID' and not is_deleted order by id asc limit 51;
SQL
for f in get list; do
    out=$(pgbench -h 127.0.0.1 -U postgres -n -M prepared -c "$CONNS" -j 2 -T "${DURATION%s}" -f "/tmp/crm-$f.sql" "$DB" 2>/dev/null)
    tps=$(awk '/^tps/ {print $3}' <<<"$out")
    lat=$(awk '/latency average/ {print $4" "$5}' <<<"$out")
    printf '| %-26s | %10s | avg %s |\n' "pgbench $f SELECT" "$tps" "$lat"
done
