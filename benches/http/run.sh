#!/usr/bin/env bash
# HTTP load run: the example server (`crm serve`) on PostgreSQL with seeded data, measured with
# wrk for GET by id (a random id of one organization per request), the list page, search and
# create (JWT auth), with row-level security on and off, next to pgbench running the very
# SELECTs that GET by id and the list page send.
#
# Besides requests/s and latency, each run reports the CPU it cost: the server's process CPU
# time and the sum over the PostgreSQL backends serving its database (/proc/PID/stat, user +
# system), divided by the requests served. wrk's own CPU is not counted.
#
# Loopback only, bounded in time (DURATION per run). Everything shares this machine's cores.
#
#   benches/http/run.sh                 # 10 orgs x 10,000 contacts, 10 s per run, 32 connections
#   ORGS=100 RECORDS=10000 DURATION=15s CONNS=32 benches/http/run.sh
#   RUNS="get list" MODES=rls benches/http/run.sh    # some runs only
#   SMOKE=1 benches/http/run.sh         # CI: the debug build, 1 org x 200 contacts, 2 s per run
#
# Other knobs:
#   SSLMODE                   of the server's and pgbench's connections (default disable)
#   RUST_LOG                  the server's log filter (default: its own, `info`, a line per
#                             request into a file)
#   CRM_POOL_MAX_CONNECTIONS  the server's pool
#   PORT                      the server's port (0: a free one)
#   CRM_LOAD_DB               the database, created and seeded on first use
#   PROFILE                   release or debug
#   CRM_BIN                   a crm binary to run instead of building one
#   RUNS, MODES, WARMUP       which runs (healthz get list search create), rls / no-rls, warm-up s
#   READERS                   whose token each run uses (default `all`): `all` the first
#                             organization's admin; `own` a user whose permission set reads only
#                             the contacts they own; `team` one whose set reads their team's
#                             (3 of the organization's 10 reps). The contacts of that organization
#                             are given to the 10 reps round-robin on first use. GET by id picks
#                             among the ids the reader may see.
#   PERF=1                    a perf profile of the server per run, /tmp/crm-perf-RUN.data
set -euo pipefail
cd "$(dirname "$0")/../.."

SMOKE=${SMOKE:-}
if [ -n "$SMOKE" ]; then
    ORGS=${ORGS:-1} RECORDS=${RECORDS:-200} DURATION=${DURATION:-2s} CONNS=${CONNS:-8}
    PROFILE=${PROFILE:-debug} CRM_LOAD_DB=${CRM_LOAD_DB:-crm_load_smoke} WARMUP=${WARMUP:-0}
fi
ORGS=${ORGS:-10}
RECORDS=${RECORDS:-10000}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
PROFILE=${PROFILE:-release}
WARMUP=${WARMUP:-2}
RUNS=${RUNS:-get list search create}
READERS=${READERS:-all}
MODES=${MODES:-rls no-rls}
DB=${CRM_LOAD_DB:-crm_load}
PORT=${PORT:-18080}
# Loopback: no TLS by default, for the server and for pgbench alike (SSLMODE=prefer measures
# both with it, as libpq's and sqlx's default would on a server with ssl on).
SSLMODE=${SSLMODE:-disable}
export PGSSLMODE=$SSLMODE
URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=$SSLMODE"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME:-/root}/.cache/abetworks-crm-target}"
export CRM_JWT_SECRET="load-test-secret-load-test-secret-0123"
TICK=$(getconf CLK_TCK)
WORK=$(mktemp -d)
trap 'kill "${SERVER:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y wrk >/dev/null; }
command -v pgbench >/dev/null || { echo "pgbench is needed (postgresql-contrib / postgresql client)"; exit 1; }
pg_isready -h 127.0.0.1 -p 5432 -q || pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start

if [ -n "${CRM_BIN:-}" ]; then
    CRM=$CRM_BIN
elif [ "$PROFILE" = release ]; then
    cargo build --release -q -p crm-cli
    CRM="$CARGO_TARGET_DIR/release/crm"
else
    cargo build -q -p crm-cli
    CRM="$CARGO_TARGET_DIR/debug/crm"
fi
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
ADMIN_TOKEN=$("$CRM" token issue --org seed-1-1 --user admin@seed-1-1.test --minutes 120)
psql -h 127.0.0.1 -U postgres -d "$DB" -Atc \
    "select id from contacts where organization_id = '$ORG_ID' and not is_deleted order by id" >"$WORK/ids-all"

# Restricted readers (READERS own, team): ten reps own the organization's contacts
# round-robin; rep0 holds a set that reads its own contacts, rep1 one that reads its team's
# (rep1, rep2, rep3); each has 20 of rep9's contacts shared with them (rep1 through the
# team). Made once per database.
if [[ " $READERS " == *" own "* || " $READERS " == *" team "* ]]; then
    org=(--org seed-1-1)
    if ! "$CRM" --json user list "${org[@]}" | grep -q 'rep0@seed-1-1.test'; then
        echo "making 10 reps, their contacts, an own and a team permission set"
        for i in $(seq 0 9); do
            "$CRM" --json user create "${org[@]}" --email "rep$i@seed-1-1.test" --name "Rep $i" --no-password >/dev/null
        done
        psql -h 127.0.0.1 -U postgres -d "$DB" -qc "
            with u as (select id, row_number() over (order by email) - 1 as n from users
                        where organization_id = '$ORG_ID' and email like 'rep_@seed-1-1.test'),
                 c as (select id, (row_number() over (order by id) - 1) % 10 as n from contacts
                        where organization_id = '$ORG_ID')
            update contacts set owner_id = u.id from c join u using (n)
             where contacts.organization_id = '$ORG_ID' and contacts.id = c.id" -c "vacuum analyze contacts"
        for reach in own team; do
            echo "{\"name\": \"Contacts: $reach\", \"entities\": {\"contacts\": {\"read\": \"$reach\", \"write\": \"$reach\", \"delete\": \"none\"}}}" >"$WORK/set-$reach.json"
            "$CRM" --json access set-create "${org[@]}" --file "$WORK/set-$reach.json" >"$WORK/set-$reach.out"
        done
        json_id() { python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'; }
        set_id() { json_id <"$WORK/set-$1.out"; }
        user_id() {
            psql -h 127.0.0.1 -U postgres -d "$DB" -Atc \
                "select id from users where organization_id = '$ORG_ID' and email = '$1'"
        }
        "$CRM" --json access assign "${org[@]}" --user "$(user_id rep0@seed-1-1.test)" --set "$(set_id own)" >/dev/null
        "$CRM" --json access assign "${org[@]}" --user "$(user_id rep1@seed-1-1.test)" --set "$(set_id team)" >/dev/null
        team=$("$CRM" --json team create "${org[@]}" --name Reps | json_id)
        for i in 1 2 3; do
            "$CRM" --json team add-member "${org[@]}" --team "$team" --user "$(user_id "rep$i@seed-1-1.test")" >/dev/null
        done
        # A few shares, as a rep has: 20 of rep9's contacts with rep0, 20 with the team.
        psql -h 127.0.0.1 -U postgres -d "$DB" -qc "
            insert into record_shares (organization_id, entity, record_id, grantee_kind, grantee_id, access, created_at)
            select c.organization_id, 'contact', c.id, g.kind, g.id, 'read', now()
              from (values ('user', '$(user_id rep0@seed-1-1.test)'::uuid, 0), ('team', '$team'::uuid, 1)) g (kind, id, n)
              cross join lateral (select * from contacts
                                   where organization_id = '$ORG_ID'
                                     and owner_id = '$(user_id rep9@seed-1-1.test)'
                                   order by id offset 20 * g.n limit 20) c"
    fi
    owned_by() { # file, emails...
        local file=$1; shift
        local list
        list=$(printf "'%s'," "$@")
        psql -h 127.0.0.1 -U postgres -d "$DB" -Atc \
            "select c.id from contacts c join users u on u.organization_id = c.organization_id and u.id = c.owner_id
              where c.organization_id = '$ORG_ID' and not c.is_deleted and u.email in (${list%,}) order by c.id" >"$file"
    }
    owned_by "$WORK/ids-own" rep0@seed-1-1.test
    owned_by "$WORK/ids-team" rep1@seed-1-1.test rep2@seed-1-1.test rep3@seed-1-1.test
fi
# The token and the ids of GET by id for a reader.
reader() {
    case $1 in
    all) TOKEN=$ADMIN_TOKEN ;;
    own) TOKEN=$("$CRM" token issue --org seed-1-1 --user rep0@seed-1-1.test --minutes 120) ;;
    team) TOKEN=$("$CRM" token issue --org seed-1-1 --user rep1@seed-1-1.test --minutes 120) ;;
    *) echo "unknown reader $1" >&2; exit 2 ;;
    esac
    export CRM_LOAD_IDS="$WORK/ids-$1"
}
reader all

# CPU ticks (user + system) of the given processes, summed.
ticks() {
    local total=0 f
    for pid in "$@"; do
        # Fields 14 and 15 of /proc/PID/stat (the name, field 2, has no spaces here).
        read -r -a f <"/proc/$pid/stat" 2>/dev/null || continue
        total=$((total + f[13] + f[14]))
    done
    echo "$total"
}
# The PostgreSQL backends serving this database (the server's pool, or pgbench's clients):
# other databases' work on the same cluster is not counted, nor are the background processes.
backends() {
    psql -h 127.0.0.1 -U postgres -d "$DB" -Atc \
        "select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
}

# CPU microseconds per request from a tick difference.
per_request() { # ticks requests
    awk -v t="$1" -v n="$2" -v hz="$TICK" 'BEGIN { if (n > 0) printf "%.0f", t / hz * 1e6 / n; else print "-" }'
}

wrk_run() { # name, extra wrk args...
    local name=$1; shift
    if [ "$WARMUP" != 0 ]; then
        wrk -t2 -c"$CONNS" -d"${WARMUP}s" -H "authorization: Bearer $TOKEN" "$@" >/dev/null
    fi
    local perf_pid=""
    if [ -n "${PERF:-}" ]; then
        perf record -q -F 2000 -o "/tmp/crm-perf-${name%% *}.data" -p "$SERVER" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    local s0 p0 out s1 p1 pg
    # The pool is open after the warm-up; without one, these are the connections that exist.
    mapfile -t pg < <(backends)
    s0=$(ticks "$SERVER"); p0=$(ticks "${pg[@]}")
    out=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency -H "authorization: Bearer $TOKEN" "$@")
    s1=$(ticks "$SERVER"); p1=$(ticks "${pg[@]}")
    [ -n "$perf_pid" ] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
    local requests rps p50 p99 errors server_us pg_us
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    server_us=$(per_request $((s1 - s0)) "$requests")
    pg_us=$(per_request $((p1 - p0)) "$requests")
    printf '| %-22s | %10s | %8s | %8s | %7s | %7s | %s\n' "$name" "$rps" "$p50" "$p99" \
        "$server_us" "$pg_us" "${errors:+non-2xx: $errors}"
    if [ -z "$requests" ] || [ "$requests" = 0 ] || [ -n "$errors" ]; then
        echo "wrk: no successful requests for $name" >&2
        echo "$out" >&2
        FAILED=1
    fi
}

serve() { # extra crm args
    # The "listening on" line names the port (PORT=0: a free one); it is logged at info.
    RUST_LOG=${RUST_LOG:-info},crm=info "$CRM" "$@" serve --listen 127.0.0.1 --port "$PORT" >"$WORK/server.log" 2>&1 &
    SERVER=$!
    local bound=""
    for _ in $(seq 1 100); do
        bound=$(grep -om1 'listening on http://[0-9.]*:[0-9]*' "$WORK/server.log" | sed 's/.*://') || true
        if [ -n "$bound" ] && curl -fs "http://127.0.0.1:$bound/healthz" >/dev/null 2>&1; then
            API="http://127.0.0.1:$bound/api/v1"
            return
        fi
        sleep 0.1
    done
    echo "the server did not start"; cat "$WORK/server.log"; exit 1
}

FAILED=
echo
echo "| run                    | requests/s |      p50 |      p99 | server µs/req | postgres µs/req |"
echo "| ---------------------- | ---------: | -------: | -------: | ------: | ------: |"
for mode in $MODES; do
    if [ "$mode" = rls ]; then serve; else serve --no-rls; fi
    for who in $READERS; do
        reader "$who"
        # The admin's runs keep their names; a restricted reader's say who.
        tag=$mode
        [ "$who" = all ] || tag="$mode, $who"
        for run in $RUNS; do
            case $run in
            # The floor: an HTTP request through the same layers that touches no database.
            healthz) wrk_run "healthz ($tag)" "${API%/api/v1}/healthz" ;;
            get) wrk_run "GET by id ($tag)" -s benches/http/get.lua "$API/contacts" ;;
            list) wrk_run "list page ($tag)" "$API/contacts?limit=50" ;;
            search) wrk_run "search ($tag)" -s benches/http/search.lua "$API/contacts/search" ;;
            create) wrk_run "create ($tag)" -s benches/http/create.lua "$API/contacts" ;;
            *) echo "unknown run $run" >&2; exit 2 ;;
            esac
        done
    done
    reader all
    kill -TERM "$SERVER"; wait "$SERVER" || true
    SERVER=
done

# The very SELECTs the two read paths send, straight to PostgreSQL (as the URL's role: no RLS).
# GET by id: 100 scripts of one random id each (pgbench's most is 128), picked at random.
get_scripts=()
for id in $(shuf -n 100 --random-source=<(yes) "$WORK/ids-all"); do
    echo "select * from contacts where organization_id = '$ORG_ID' and id = '$id' and not is_deleted;" >"$WORK/get-$id.sql"
    get_scripts+=(-f "$WORK/get-$id.sql")
done
echo "select * from contacts where organization_id = '$ORG_ID' and not is_deleted order by id asc limit 51;" >"$WORK/list.sql"
pgbench_run() { # name, pgbench script args...
    local name=$1; shift
    local out tps lat pg used seconds=${DURATION%s}
    # pgbench's backends start with it and end with it: their CPU is read a second before the
    # end (from their start), against the transactions of that long at the run's rate.
    pgbench -h 127.0.0.1 -U postgres -n -M prepared -c "$CONNS" -j 2 -T "$seconds" "$@" "$DB" \
        >"$WORK/pgbench.out" 2>/dev/null &
    local pgbench=$!
    sleep $((seconds - 1))
    mapfile -t pg < <(backends)
    used=$(ticks "${pg[@]}")
    wait "$pgbench"
    out=$(cat "$WORK/pgbench.out")
    tps=$(awk '/^tps/ {printf "%.0f", $3; exit}' <<<"$out")
    lat=$(awk '/^latency average/ {print $4" "$5; exit}' <<<"$out")
    local tx=$((tps * (seconds - 1)))
    printf '| %-22s | %10s | avg %s | | | %7s |\n' "pgbench $name" "$tps" "$lat" "$(per_request "$used" "$tx")"
}
if [[ " $RUNS " == *" get "* ]]; then pgbench_run "GET SELECT" "${get_scripts[@]}"; fi
if [[ " $RUNS " == *" list "* ]]; then pgbench_run "list SELECT" -f "$WORK/list.sql"; fi

if [ -n "$FAILED" ]; then exit 1; fi
