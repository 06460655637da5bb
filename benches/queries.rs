//! The library's query paths against hand-written sqlx running the same SQL.
//!
//! Every group holds a `raw_sqlx` function (a plain sqlx pool, prepared statements, the same
//! WHERE clauses, decoding the same columns) next to `library`, so the library's overhead reads
//! as a ratio within one run. See `docs/benchmarks.md` for the commands and the figures.
//!
//! - SQLite always: a fresh file in the temp directory, 10 organizations × 2,000 contacts.
//! - PostgreSQL when `CRM_BENCH_DATABASE_URL` is set (a superuser URL: the seed and the
//!   "RLS off" pool bypass row-level security): 100 × 10,000 contacts, seeded once with
//!   set-based SQL and reused while the marker table `crm_bench_seed` matches.
//!   `CRM_BENCH_QUICK=1` seeds and measures the small data set with shorter runs.
//!
//! The raw PostgreSQL pool acts as `crm_app` with `crm.org_id` set once per connection, which is
//! what the library's pool does for a tenant it already serves: the database does the same work
//! for both, and what differs is the library.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::str::FromStr as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use crm_core::sqlx::{self, Connection as _, Executor as _};
use crm_core::{
    AccountId, Computed, Condition, ContactId, ContactPatch, Crm, CustomFieldType, EntityKind,
    FormulaSpec, ListQuery, NewAccount, NewContact, NewCustomField, NewOpportunity,
    NewOrganization, Op, OrganizationId, RollupFunction, RollupSpec, Tenant, TenantContext,
};
use serde_json::{Map, Value, json};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};
use tokio::runtime::Runtime;
use tokio::sync::Mutex;
use uuid::Uuid;

/// Rows per list page (the list statements below hold `limit 11`: one more, written into their
/// text as the library writes it); the deep cursor sits at page `DEEP_PAGE`.
const PAGE: u32 = 10;

/// The columns the library reads a contact by, in its decoding order (`Fields::SELECT`).
macro_rules! contact_columns {
    () => {
        "id, organization_id, created_at, updated_at, created_by, updated_by, version, is_deleted, deleted_at, deleted_by, custom_fields, first_name, last_name, email, phone, mobile, title, account_id, owner_id"
    };
}

// The statements the library sends for contacts (see `crm-core/src/record/{service,list}.rs`),
// written out by hand for the raw side. The PostgreSQL setup checks that they are byte for byte
// what the library sent.
const GET: &str = concat!(
    "select ",
    contact_columns!(),
    " from contacts where organization_id = $1 and id = $2 and not is_deleted"
);
const LIST: &str = concat!(
    "select ",
    contact_columns!(),
    " from contacts where organization_id = $1 and not is_deleted order by id asc limit 11"
);
const LIST_AFTER: &str = concat!(
    "select ",
    contact_columns!(),
    " from contacts where organization_id = $1 and not is_deleted and id > $2 order by id asc limit 11"
);
const BY_LAST_NAME: &str = concat!(
    "select ",
    contact_columns!(),
    " from contacts where organization_id = $1 and not is_deleted and last_name = $2 order by id asc limit 11"
);
const BY_TIER_PG: &str = concat!(
    "select ",
    contact_columns!(),
    " from contacts where organization_id = $1 and not is_deleted and custom_fields @> $2 order by id asc limit 11"
);
const BY_TIER_SQLITE: &str = concat!(
    "select ",
    contact_columns!(),
    " from contacts where organization_id = $1 and not is_deleted and custom_fields->>'tier' = $2 order by id asc limit 11"
);
const SEARCH: &str = concat!(
    "select ",
    contact_columns!(),
    " from contacts where organization_id = $1 and not is_deleted and lower(last_name) like $2 escape '\\' order by id asc limit 11"
);
const INSERT: &str = concat!(
    "insert into contacts (organization_id, id, created_at, updated_at, created_by, updated_by, version, is_deleted, custom_fields, first_name, last_name, email, phone, mobile, title, account_id, owner_id) values ($1, $2, $3, $4, $5, $6, 1, false, $7, $8, $9, $10, $11, $12, $13, $14, $15) returning ",
    contact_columns!()
);
const LOCK_PG: &str = concat!(
    "select ",
    contact_columns!(),
    " from contacts where organization_id = $1 and id = $2 and not is_deleted for update"
);
const SET_TITLE: &str = concat!(
    "update contacts set version = version + 1, updated_at = $1, updated_by = $2, title = $3 where organization_id = $4 and id = $5 and version = $6 returning ",
    contact_columns!()
);
const SET_DELETED: &str = concat!(
    "update contacts set version = version + 1, updated_at = $1, updated_by = $2, is_deleted = $3, deleted_at = $4, deleted_by = $5 where organization_id = $6 and id = $7 and version = $8 returning ",
    contact_columns!()
);
const EVENT: &str = "insert into events (organization_id, id, entity, record_id, action, actor_kind, actor_id, changes, occurred_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Every column of `contacts`, decoded as the library's `Record<Contact>` decodes them.
#[derive(Debug, sqlx::FromRow)]
#[allow(dead_code)] // decoded to measure decoding, not read
struct RawContact {
    organization_id: Uuid,
    id: Uuid,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    created_by: Option<Uuid>,
    updated_by: Option<Uuid>,
    version: i64,
    is_deleted: bool,
    deleted_at: Option<DateTime<Utc>>,
    deleted_by: Option<Uuid>,
    #[sqlx(json)]
    custom_fields: Map<String, Value>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    mobile: Option<String>,
    title: Option<String>,
    account_id: Option<Uuid>,
    owner_id: Option<Uuid>,
}

/// The raw side: a plain sqlx pool of either backend, or one connection taken from it and
/// held (no pool checkout at all: the lower bound for a statement through sqlx).
enum Raw {
    Pg(PgPool),
    Sqlite(SqlitePool),
    PgConn(Mutex<PoolConnection<sqlx::Postgres>>),
    SqliteConn(Mutex<PoolConnection<sqlx::Sqlite>>),
}

/// Runs the same body on any raw side, `$pool` being the executor.
macro_rules! on_raw {
    ($raw:expr, |$pool:ident| $body:expr) => {
        match $raw {
            Raw::Pg($pool) => $body,
            Raw::Sqlite($pool) => $body,
            Raw::PgConn(c) => {
                let mut c = c.lock().await;
                let $pool = &mut **c;
                $body
            }
            Raw::SqliteConn(c) => {
                let mut c = c.lock().await;
                let $pool = &mut **c;
                $body
            }
        }
    };
}

/// One seeded backend, ready to measure.
struct Bench {
    name: &'static str,
    rt: Runtime,
    crm: Crm,
    /// PostgreSQL only: the library and a raw pool with the URL's (superuser) role, so with
    /// row-level security off.
    rls_off: Option<(Crm, Raw)>,
    raw: Raw,
    /// A connection of `raw`'s pool, held for the whole run.
    held: Raw,
    orgs: Vec<OrganizationId>,
    /// Tenant handles for `orgs`, same order.
    tenants: Vec<Tenant>,
    /// Live contact ids of the first organization (the one the same-tenant runs use).
    ids: Vec<Uuid>,
    /// The middle half of `ids`: the rows the patch and delete benches write, away from the
    /// first and the deep page that the list benches read.
    write_ids: Vec<Uuid>,
    /// One live contact id per organization, for the rotating-tenant runs.
    rotating_ids: Vec<Uuid>,
    /// The id after which page `deep_page` starts, and the library's cursor for it.
    deep_after: Uuid,
    deep_cursor: String,
    deep_page: usize,
    quick: bool,
}

fn quick() -> bool {
    std::env::var("CRM_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Seeding

/// Organizations named `bench N` with a `tier` select field on contacts, made through the
/// library so that their default rows (pipeline, stages…) exist.
async fn create_orgs(crm: &Crm, n: usize) -> Vec<OrganizationId> {
    let mut orgs = Vec::with_capacity(n);
    for i in 0..n {
        let org = crm
            .organizations()
            .create(NewOrganization {
                name: format!("bench {i:03}"),
                slug: Some(format!("bench-{i:03}")),
            })
            .await
            .unwrap();
        let mut tier = NewCustomField::new("tier", "Tier", CustomFieldType::Select);
        tier.options = vec!["gold".into(), "silver".into(), "bronze".into()];
        crm.tenant(&TenantContext::system(org.id))
            .custom_fields()
            .define(EntityKind::Contact, tier)
            .await
            .unwrap();
        orgs.push(org.id);
    }
    orgs
}

/// PostgreSQL: `per_org` contacts in each bench organization, in one set-based statement. Ids
/// are UUIDv7-shaped (a millisecond prefix in 2025), so they sort by creation like the
/// library's own and rows created during the run sort after them.
const PG_SEED: &str = "
insert into contacts (organization_id, id, created_at, updated_at, version, is_deleted,
                      custom_fields, first_name, last_name, email, phone, title)
select o.id,
       (lpad(to_hex(1735689600000 + i * 1000), 12, '0') || '7' || substr(h, 1, 3) || '8'
        || substr(h, 4, 15))::uuid,
       to_timestamp(1735689600 + i), to_timestamp(1735689600 + i), 1, false,
       jsonb_build_object('tier', (array['gold', 'silver', 'bronze'])[1 + i % 3]),
       'First' || i, 'Name' || (i % 100), 'c' || i || '@example.com',
       '+1555' || lpad(i::text, 7, '0'), (array['CEO', 'CTO', 'Engineer', 'Buyer'])[1 + i % 4]
from organizations o
cross join generate_series(1, $1) i
cross join lateral (select md5(o.id::text || i::text) as h) r
where o.slug like 'bench-%'";

/// SQLite: the same rows (timestamps in sqlx's RFC 3339 text form, ids as 16-byte blobs).
const SQLITE_SEED: &str = "
with recursive s(i) as (select 1 union all select i + 1 from s where i < $1)
insert into contacts (organization_id, id, created_at, updated_at, version, is_deleted,
                      custom_fields, first_name, last_name, email, phone, title)
select o.id,
       unhex(printf('%012x', 1735689600000 + i * 1000) || '7' || substr(hex(randomblob(10)), 1, 19)),
       strftime('%Y-%m-%dT%H:%M:%f+00:00', 1735689600 + i, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%f+00:00', 1735689600 + i, 'unixepoch'), 1, 0,
       json_object('tier', case i % 3 when 0 then 'gold' when 1 then 'silver' else 'bronze' end),
       'First' || i, 'Name' || (i % 100), 'c' || i || '@example.com',
       '+1555' || printf('%07d', i),
       case i % 4 when 0 then 'CEO' when 1 then 'CTO' when 2 then 'Engineer' else 'Buyer' end
from organizations o, s
where o.slug like 'bench-%'";

/// Seeds PostgreSQL unless the marker says this data set is already there; returns the orgs.
async fn seed_postgres(url: &str, crm: &Crm, orgs: usize, per_org: usize) -> Vec<OrganizationId> {
    let mut admin = sqlx::PgConnection::connect(url).await.unwrap();
    admin
        .execute(
            "create table if not exists crm_bench_seed (orgs int not null, per_org int not null)",
        )
        .await
        .unwrap();
    let marker: Option<(i32, i32)> = sqlx::query_as("select orgs, per_org from crm_bench_seed")
        .fetch_optional(&mut admin)
        .await
        .unwrap();
    let wanted = (
        i32::try_from(orgs).unwrap(),
        i32::try_from(per_org).unwrap(),
    );
    if marker != Some(wanted) {
        eprintln!("seeding PostgreSQL: {orgs} organizations × {per_org} contacts…");
        let started = Instant::now();
        admin
            .execute("truncate crm_bench_seed, organizations cascade")
            .await
            .unwrap();
        create_orgs(crm, orgs).await;
        sqlx::query(PG_SEED)
            .bind(wanted.1)
            .execute(&mut admin)
            .await
            .unwrap();
        admin.execute("vacuum analyze").await.unwrap();
        sqlx::query("insert into crm_bench_seed values ($1, $2)")
            .bind(wanted.0)
            .bind(wanted.1)
            .execute(&mut admin)
            .await
            .unwrap();
        eprintln!("seeded in {:.1?}", started.elapsed());
    }
    // Contacts the create benches of earlier runs added, and the dead row versions their
    // writes left, so that every run reads the same table.
    admin
        .execute("delete from contacts where last_name = 'Bench'")
        .await
        .unwrap();
    admin.execute("vacuum analyze contacts").await.unwrap();
    let ids: Vec<(Uuid,)> =
        sqlx::query_as("select id from organizations where slug like 'bench-%' order by slug")
            .fetch_all(&mut admin)
            .await
            .unwrap();
    ids.into_iter().map(|(id,)| id.into()).collect()
}

// ---------------------------------------------------------------------------------------------
// Setup

impl Bench {
    async fn sqlite() -> (Crm, Raw, Vec<OrganizationId>) {
        let path = std::env::temp_dir().join(format!("crm_bench_{}.db", std::process::id()));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let url = format!("sqlite://{}", path.display());
        let crm = Crm::connect(&url).await.unwrap();
        let raw = SqlitePoolOptions::new()
            .max_connections(10)
            .test_before_acquire(false)
            .connect_with(
                SqliteConnectOptions::from_str(&url)
                    .unwrap()
                    .journal_mode(SqliteJournalMode::Wal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10)),
            )
            .await
            .unwrap();
        let orgs = create_orgs(&crm, 10).await;
        sqlx::query(SQLITE_SEED)
            .bind(2000_i64)
            .execute(&raw)
            .await
            .unwrap();
        raw.execute("analyze").await.unwrap();
        (crm, Raw::Sqlite(raw), orgs)
    }

    async fn postgres(url: &str, quick: bool) -> (Crm, (Crm, Raw), Raw, Vec<OrganizationId>) {
        let crm = Crm::connect(url).await.unwrap();
        let (n, per_org) = if quick { (10, 2_000) } else { (100, 10_000) };
        let orgs = seed_postgres(url, &crm, n, per_org).await;
        let rls_off = Crm::builder()
            .database_url(url)
            .postgres_role(None)
            .build()
            .await
            .unwrap();
        // As the library's pool: the application role, the first tenant bound once.
        let org = orgs[0].uuid().to_string();
        // A ping before every checkout would add a round trip; the library does not ping either.
        let options = || {
            PgPoolOptions::new()
                .max_connections(10)
                .test_before_acquire(false)
        };
        let raw_rls_off = options()
            .connect_with(PgConnectOptions::from_str(url).unwrap())
            .await
            .unwrap();
        let raw = options()
            .after_connect(move |conn, _| {
                let org = org.clone();
                Box::pin(async move {
                    sqlx::query(
                        "select set_config('role', 'crm_app', false), set_config('crm.org_id', $1, false)",
                    )
                    .bind(org)
                    .execute(conn)
                    .await
                    .map(|_| ())
                })
            })
            .connect_with(PgConnectOptions::from_str(url).unwrap())
            .await
            .unwrap();
        (crm, (rls_off, Raw::Pg(raw_rls_off)), Raw::Pg(raw), orgs)
    }

    fn new(name: &'static str) -> Option<Bench> {
        let rt = runtime();
        let quick = quick();
        let (crm, rls_off, raw, orgs) = match name {
            "sqlite" => {
                let (crm, raw, orgs) = rt.block_on(Bench::sqlite());
                (crm, None, raw, orgs)
            }
            _ => {
                let url = std::env::var("CRM_BENCH_DATABASE_URL").ok()?;
                let (crm, off, raw, orgs) = rt.block_on(Bench::postgres(&url, quick));
                (crm, Some(off), raw, orgs)
            }
        };
        let held = rt.block_on(async {
            match &raw {
                Raw::Pg(p) => Raw::PgConn(Mutex::new(p.acquire().await.unwrap())),
                Raw::Sqlite(p) => Raw::SqliteConn(Mutex::new(p.acquire().await.unwrap())),
                _ => unreachable!("the raw side starts as a pool"),
            }
        });
        let tenants: Vec<Tenant> = orgs
            .iter()
            .map(|o| crm.tenant(&TenantContext::system(*o)))
            .collect();
        let (ids, rotating_ids, deep_after, deep_page) = rt.block_on(async {
            let ids: Vec<Uuid> = on_raw!(&raw, |p| {
                sqlx::query_scalar(
                    "select id from contacts where organization_id = $1 and not is_deleted order by id",
                )
                .bind(orgs[0].uuid())
                .fetch_all(p)
                .await
                .unwrap()
            });
            let mut rotating = Vec::new();
            for t in &tenants {
                let page = t
                    .contacts()
                    .list(&ListQuery::default().limit(1))
                    .await
                    .unwrap();
                rotating.push(page.data[0].id.uuid());
            }
            // The last full page: page 1,000 of 10,000 rows, page 200 of 2,000.
            let deep_page = ids.len() / PAGE as usize;
            let deep_after = ids[(deep_page - 1) * PAGE as usize - 1];
            (ids, rotating, deep_after, deep_page)
        });
        // The library's cursor after `deep_after`: the next cursor of a one-row page at it.
        let deep_cursor = rt.block_on(async {
            tenants[0]
                .contacts()
                .list(
                    &ListQuery::default()
                        .filter("id", Op::Gte, deep_after.to_string())
                        .limit(1),
                )
                .await
                .unwrap()
                .next_cursor
                .unwrap()
        });
        let b = Bench {
            name,
            rt,
            crm,
            rls_off,
            raw,
            held,
            orgs,
            tenants,
            write_ids: ids[ids.len() / 4..ids.len() * 3 / 4].to_vec(),
            ids,
            rotating_ids,
            deep_after,
            deep_cursor,
            deep_page,
            quick,
        };
        b.check_same_sql();
        eprintln!(
            "{name}: {} organizations, {} contacts in the first, deep page {}",
            b.orgs.len(),
            b.ids.len(),
            b.deep_page
        );
        Some(b)
    }

    /// PostgreSQL: the raw statements are exactly the ones the library sends.
    fn check_same_sql(&self) {
        if self.rls_off.is_none() {
            return;
        }
        let t = &self.tenants[0];
        let (_, sent) = self.rt.block_on(crm_core::explain_statements(async {
            let c = t.contacts();
            c.get(self.ids[0].into()).await.unwrap();
            c.list(&self.query_first()).await.unwrap();
            c.list(&self.query_deep()).await.unwrap();
            c.list(&self.query_last_name()).await.unwrap();
            c.list(&self.query_tier()).await.unwrap();
            c.list(&self.query_search()).await.unwrap();
        }));
        // Reads of the custom field definitions (on a cache miss) aside.
        let sent: Vec<&str> = sent
            .iter()
            .map(|(sql, _)| sql.as_str())
            .filter(|sql| sql.contains(" from contacts "))
            .collect();
        assert_eq!(
            sent,
            [GET, LIST, LIST_AFTER, BY_LAST_NAME, BY_TIER_PG, SEARCH],
            "the raw statements must be the library's"
        );
    }

    fn query_first(&self) -> ListQuery {
        ListQuery::default().limit(PAGE)
    }
    fn query_deep(&self) -> ListQuery {
        self.query_first().cursor(Some(self.deep_cursor.clone()))
    }
    fn query_last_name(&self) -> ListQuery {
        self.query_first().filter("last_name", Op::Eq, "Name42")
    }
    fn query_tier(&self) -> ListQuery {
        self.query_first()
            .filter("custom_fields.tier", Op::Eq, "gold")
    }
    fn query_search(&self) -> ListQuery {
        self.query_first().filter("last_name", Op::Contains, "ME4")
    }
}

// ---------------------------------------------------------------------------------------------
// Raw reads

impl Raw {
    async fn get(&self, org: Uuid, id: Uuid) -> RawContact {
        on_raw!(self, |p| sqlx::query_as(GET)
            .bind(org)
            .bind(id)
            .fetch_optional(p)
            .await
            .unwrap()
            .unwrap())
    }

    /// A page of `sql`, whose parameters are the organization, then `arg` (if any); its text
    /// holds the limit, one more than the page (`PAGE + 1`, written out as the library writes
    /// it, to learn whether a next page exists).
    async fn page<A>(&self, sql: &'static str, org: Uuid, arg: Option<A>) -> Vec<RawContact>
    where
        A: for<'q> sqlx::Encode<'q, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>
            + for<'q> sqlx::Encode<'q, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>
            + Send
            + Clone,
    {
        let mut rows: Vec<RawContact> = on_raw!(self, |p| {
            let q = sqlx::query_as(sql).bind(org);
            let q = match arg.clone() {
                Some(a) => q.bind(a),
                None => q,
            };
            q.fetch_all(p).await.unwrap()
        });
        rows.truncate(PAGE as usize);
        rows
    }
}

// ---------------------------------------------------------------------------------------------
// Groups

type Group<'a> = BenchmarkGroup<'a, WallTime>;

fn group<'a>(c: &'a mut Criterion, b: &Bench, name: &str) -> Group<'a> {
    let mut g = c.benchmark_group(format!("{}/{name}", b.name));
    if b.quick {
        g.warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .sample_size(10);
    } else {
        g.warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .sample_size(30);
    }
    g
}

fn cycle(ids: &[Uuid], n: &mut usize) -> Uuid {
    *n = (*n + 1) % ids.len();
    ids[*n]
}

fn get_by_id(c: &mut Criterion, b: &Bench) {
    let mut g = group(c, b, "get_by_id");
    let org = b.orgs[0].uuid();
    let mut n = 0;
    g.bench_function("raw_sqlx", |x| {
        x.to_async(&b.rt).iter(|| {
            let id = cycle(&b.ids, &mut n);
            async move { b.raw.get(org, id).await }
        })
    });
    g.bench_function("raw_sqlx_held_connection", |x| {
        x.to_async(&b.rt).iter(|| {
            let id = cycle(&b.ids, &mut n);
            async move { b.held.get(org, id).await }
        })
    });
    let t = &b.tenants[0];
    g.bench_function("library", |x| {
        x.to_async(&b.rt).iter(|| {
            let id: ContactId = cycle(&b.ids, &mut n).into();
            async move { t.contacts().get(id).await.unwrap() }
        })
    });
    if let Some((off, raw_off)) = &b.rls_off {
        g.bench_function("raw_sqlx_rls_off", |x| {
            x.to_async(&b.rt).iter(|| {
                let id = cycle(&b.ids, &mut n);
                async move { raw_off.get(org, id).await }
            })
        });
        let t_off = off.tenant(&TenantContext::system(b.orgs[0]));
        let t_off = &t_off;
        g.bench_function("library_rls_off", |x| {
            x.to_async(&b.rt).iter(|| {
                let id: ContactId = cycle(&b.ids, &mut n).into();
                async move { t_off.contacts().get(id).await.unwrap() }
            })
        });
    }
    g.bench_function("library_rotating_tenants", |x| {
        x.to_async(&b.rt).iter(|| {
            n = (n + 1) % b.tenants.len();
            let (t, id) = (&b.tenants[n], ContactId::from(b.rotating_ids[n]));
            async move { t.contacts().get(id).await.unwrap() }
        })
    });
    g.finish();
}

/// A list group: raw and library on the first tenant; for a target path (`target`) also a held
/// raw connection and rotating tenants.
#[allow(clippy::too_many_arguments)]
fn list_group<A>(
    c: &mut Criterion,
    b: &Bench,
    name: &str,
    sql: &'static str,
    arg: Option<A>,
    query: &ListQuery,
    target: bool,
) where
    A: for<'q> sqlx::Encode<'q, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
        + for<'q> sqlx::Encode<'q, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
        + Send
        + Sync
        + Clone,
{
    let mut g = group(c, b, name);
    let org = b.orgs[0].uuid();
    let arg = &arg;
    g.bench_function("raw_sqlx", |x| {
        x.to_async(&b.rt)
            .iter(|| async move { b.raw.page(sql, org, arg.clone()).await })
    });
    let t = &b.tenants[0];
    g.bench_function("library", |x| {
        x.to_async(&b.rt)
            .iter(|| async move { t.contacts().list(query).await.unwrap() })
    });
    if target {
        g.bench_function("raw_sqlx_held_connection", |x| {
            x.to_async(&b.rt)
                .iter(|| async move { b.held.page(sql, org, arg.clone()).await })
        });
        let mut n = 0;
        g.bench_function("library_rotating_tenants", |x| {
            x.to_async(&b.rt).iter(|| {
                n = (n + 1) % b.tenants.len();
                let t = &b.tenants[n];
                async move { t.contacts().list(query).await.unwrap() }
            })
        });
    }
    g.finish();
}

fn lists(c: &mut Criterion, b: &Bench) {
    let none: Option<String> = None;
    list_group(
        c,
        b,
        "list_first_page",
        LIST,
        none.clone(),
        &b.query_first(),
        true,
    );
    list_group(
        c,
        b,
        "list_deep_page",
        LIST_AFTER,
        Some(b.deep_after),
        &b.query_deep(),
        false,
    );
    list_group(
        c,
        b,
        "filter_last_name",
        BY_LAST_NAME,
        Some("Name42".to_owned()),
        &b.query_last_name(),
        false,
    );
    match &b.raw {
        Raw::Pg(_) | Raw::PgConn(_) => list_group(
            c,
            b,
            "filter_custom_field",
            BY_TIER_PG,
            Some(sqlx::types::Json(json!({ "tier": "gold" }))),
            &b.query_tier(),
            false,
        ),
        Raw::Sqlite(_) | Raw::SqliteConn(_) => list_group(
            c,
            b,
            "filter_custom_field",
            BY_TIER_SQLITE,
            Some("gold".to_owned()),
            &b.query_tier(),
            false,
        ),
    }
    list_group(
        c,
        b,
        "search_contains",
        SEARCH,
        Some("%me4%".to_owned()),
        &b.query_search(),
        false,
    );
}

// ---------------------------------------------------------------------------------------------
// Writes, raw: the statements of the library's create / update / delete, in one transaction.

/// The event the library appends with every write, as the system actor.
fn event_args(org: Uuid, record: Uuid, action: &'static str, changes: Value) -> EventRow {
    EventRow {
        org,
        id: Uuid::now_v7(),
        record,
        action,
        changes,
        at: Utc::now(),
    }
}

struct EventRow {
    org: Uuid,
    id: Uuid,
    record: Uuid,
    action: &'static str,
    changes: Value,
    at: DateTime<Utc>,
}

/// One raw write: the statements in order, on one transaction of the raw pool.
macro_rules! raw_tx {
    ($raw:expr, |$tx:ident| $body:expr) => {
        match $raw {
            Raw::Pg(p) => {
                let mut $tx = p.begin().await.unwrap();
                $body;
                $tx.commit().await.unwrap();
            }
            Raw::Sqlite(p) => {
                let mut $tx = p.begin_with("BEGIN IMMEDIATE").await.unwrap();
                $body;
                $tx.commit().await.unwrap();
            }
            Raw::PgConn(_) | Raw::SqliteConn(_) => unreachable!("writes use the pool"),
        }
    };
}

macro_rules! bind_event {
    ($e:expr) => {
        sqlx::query(EVENT)
            .bind($e.org)
            .bind($e.id)
            .bind("contact")
            .bind($e.record)
            .bind($e.action)
            .bind("system")
            .bind(None::<Uuid>)
            .bind(sqlx::types::Json($e.changes))
            .bind($e.at)
    };
}

impl Raw {
    async fn create(&self, org: Uuid, n: usize) {
        let (id, at) = (Uuid::now_v7(), Utc::now());
        let email = format!("new{n}@example.com");
        let changes = json!({ "last_name": { "after": "Bench" }, "email": { "after": email } });
        let event = event_args(org, id, "created", changes);
        raw_tx!(self, |tx| {
            let _: RawContact = sqlx::query_as(INSERT)
                .bind(org)
                .bind(id)
                .bind(at)
                .bind(at)
                .bind(None::<Uuid>)
                .bind(None::<Uuid>)
                .bind(sqlx::types::Json(json!({})))
                .bind(None::<String>)
                .bind(Some("Bench"))
                .bind(Some(email.as_str()))
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<Uuid>)
                .bind(None::<Uuid>)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            bind_event!(event).execute(&mut *tx).await.unwrap();
        });
    }

    /// Locks the live row, then runs `update` (with the row's version) and logs the event.
    async fn change(&self, org: Uuid, id: Uuid, title: Option<&str>, action: &'static str) {
        let event = event_args(org, id, action, json!({ "title": { "after": title } }));
        let lock = match self {
            Raw::Pg(_) | Raw::PgConn(_) => LOCK_PG,
            Raw::Sqlite(_) | Raw::SqliteConn(_) => GET,
        };
        raw_tx!(self, |tx| {
            let current: RawContact = sqlx::query_as(lock)
                .bind(org)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .unwrap()
                .unwrap();
            let now = Utc::now();
            let q = match title {
                Some(_) => sqlx::query_as(SET_TITLE)
                    .bind(now)
                    .bind(None::<Uuid>)
                    .bind(title),
                None => sqlx::query_as(SET_DELETED)
                    .bind(now)
                    .bind(None::<Uuid>)
                    .bind(true)
                    .bind(Some(now))
                    .bind(None::<Uuid>),
            };
            let _: RawContact = q
                .bind(org)
                .bind(id)
                .bind(current.version)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            bind_event!(event).execute(&mut *tx).await.unwrap();
        });
    }

    /// Takes rows of the first organization out of the trash again (untimed).
    async fn restore_all(&self, org: Uuid) {
        let sql = "update contacts set is_deleted = false, deleted_at = null, deleted_by = null where organization_id = $1 and is_deleted";
        on_raw!(self, |p| {
            sqlx::query(sql).bind(org).execute(p).await.unwrap();
        });
    }
}

fn writes(c: &mut Criterion, b: &Bench) {
    let org = b.orgs[0].uuid();
    let t = &b.tenants[0];
    let mut n = 0_usize;

    let mut g = group(c, b, "create");
    g.bench_function("raw_sqlx", |x| {
        x.to_async(&b.rt).iter(|| {
            n += 1;
            let n = n;
            async move { b.raw.create(org, n).await }
        })
    });
    g.bench_function("library", |x| {
        x.to_async(&b.rt).iter(|| {
            n += 1;
            let new = NewContact {
                last_name: Some("Bench".into()),
                email: Some(format!("new{n}@example.com")),
                ..Default::default()
            };
            async move { t.contacts().create(new).await.unwrap() }
        })
    });
    g.finish();

    // The title changes on every call (a patch that changes nothing writes nothing).
    let mut round = 0_usize;
    let mut g = group(c, b, "patch");
    g.bench_function("raw_sqlx", |x| {
        x.to_async(&b.rt).iter(|| {
            let id = cycle(&b.write_ids, &mut n);
            round += 1;
            let title = format!("T{round}");
            async move { b.raw.change(org, id, Some(&title), "updated").await }
        })
    });
    g.bench_function("library", |x| {
        x.to_async(&b.rt).iter(|| {
            let id = cycle(&b.write_ids, &mut n);
            round += 1;
            let patch = ContactPatch {
                title: Some(Some(format!("T{round}"))),
                ..Default::default()
            };
            async move { t.contacts().update(id.into(), patch).await.unwrap() }
        })
    });
    g.finish();

    // Each timed delete takes a row not yet in the trash; the trash is emptied between
    // batches, untimed.
    let mut g = group(c, b, "soft_delete");
    g.bench_function("raw_sqlx", |x| {
        x.to_async(&b.rt).iter_custom(|iters| {
            timed_deletes(b, iters, |id| b.raw.change(org, id, None, "deleted"))
        })
    });
    g.bench_function("library", |x| {
        x.to_async(&b.rt).iter_custom(|iters| {
            timed_deletes(b, iters, |id| async move {
                t.contacts().delete(ContactId::from(id)).await.unwrap();
            })
        })
    });
    g.finish();
}

/// Runs `delete` on `iters` live rows of the first organization and returns the time spent in
/// it; the trash is emptied (untimed) before a row would come round again.
async fn timed_deletes<F, Fut>(b: &Bench, iters: u64, mut delete: F) -> Duration
where
    F: FnMut(Uuid) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut spent = Duration::ZERO;
    let mut left = usize::try_from(iters).unwrap();
    while left > 0 {
        let batch = left.min(b.write_ids.len());
        let started = Instant::now();
        for id in &b.write_ids[..batch] {
            delete(*id).await;
        }
        spent += started.elapsed();
        b.raw.restore_all(b.orgs[0].uuid()).await;
        left -= batch;
    }
    spent
}

// ---------------------------------------------------------------------------------------------
// Paired ratios
//
// Criterion measures one function after the other, seconds apart; on a machine shared with
// other work, the load changes in between. Here two variants alternate in blocks of calls, so
// that whatever load there is falls on both alike, and the median of the per-block ratios is
// reported (with the 10th and 90th percentiles).

const BLOCK: usize = 200;
const BLOCKS: usize = 31;

async fn time_block<F, Fut>(f: &mut F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future,
{
    let started = Instant::now();
    for _ in 0..BLOCK {
        std::hint::black_box(f().await);
    }
    started.elapsed()
}

/// `(p10, median, p90)` of time(a) / time(b) over alternating blocks.
async fn paired<FA, FB, A, B>(mut a: FA, mut b: FB) -> (f64, f64, f64)
where
    FA: FnMut() -> A,
    FB: FnMut() -> B,
    A: std::future::Future,
    B: std::future::Future,
{
    time_block(&mut a).await;
    time_block(&mut b).await;
    let mut ratios: Vec<f64> = Vec::with_capacity(BLOCKS);
    for i in 0..BLOCKS {
        // Alternate which goes first, so neither always follows the other.
        let (ta, tb) = if i % 2 == 0 {
            let ta = time_block(&mut a).await;
            (ta, time_block(&mut b).await)
        } else {
            let tb = time_block(&mut b).await;
            (time_block(&mut a).await, tb)
        };
        ratios.push(ta.as_secs_f64() / tb.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    (
        ratios[BLOCKS / 10],
        ratios[BLOCKS / 2],
        ratios[BLOCKS - 1 - BLOCKS / 10],
    )
}

fn report(backend: &str, what: &str, (p10, median, p90): (f64, f64, f64)) {
    println!("paired {backend:<8} {what:<58} {median:>5.2}  (p10 {p10:.2}, p90 {p90:.2})");
}

/// A closure getting `$t`'s contacts by id, cycling through `$ids` with the counter `$n`.
macro_rules! library_get {
    ($t:expr, $ids:expr, $n:ident) => {
        || {
            let id: ContactId = cycle(&$ids, &mut $n).into();
            let t = $t;
            async move { t.contacts().get(id).await }
        }
    };
}

fn paired_ratios(b: &Bench) {
    let org = b.orgs[0].uuid();
    let t = &b.tenants[0];
    let (mut i, mut j) = (0, 0);
    let name = b.name;
    b.rt.block_on(async {
        let (first, deep) = (&b.query_first(), &b.query_deep());
        let r = paired(library_get!(t, b.ids, i), || {
            b.held.get(org, cycle(&b.ids, &mut j))
        })
        .await;
        report(name, "get_by_id: library / raw held connection", r);
        let r = paired(library_get!(t, b.ids, i), || {
            b.raw.get(org, cycle(&b.ids, &mut j))
        })
        .await;
        report(name, "get_by_id: library / raw pool", r);
        let r = paired(
            || b.raw.get(org, cycle(&b.ids, &mut i)),
            || b.held.get(org, cycle(&b.ids, &mut j)),
        )
        .await;
        report(name, "get_by_id: raw pool / raw held connection", r);
        let r = paired(
            || async move { t.contacts().list(first).await },
            || b.held.page(LIST, org, None::<String>),
        )
        .await;
        report(name, "list_first_page: library / raw held connection", r);
        let r = paired(
            || async move { t.contacts().list(first).await },
            || b.raw.page(LIST, org, None::<String>),
        )
        .await;
        report(name, "list_first_page: library / raw pool", r);
        let r = paired(
            || async move { t.contacts().list(deep).await },
            || async move { t.contacts().list(first).await },
        )
        .await;
        report(name, "library: deep page / first page", r);
        let r = paired(
            || b.held.page(LIST_AFTER, org, Some(b.deep_after)),
            || b.held.page(LIST, org, None::<String>),
        )
        .await;
        report(name, "raw held connection: deep page / first page", r);
        let r = paired(
            || {
                i = (i + 1) % b.tenants.len();
                let (t, id) = (&b.tenants[i], ContactId::from(b.rotating_ids[i]));
                async move { t.contacts().get(id).await }
            },
            library_get!(t, b.ids, j),
        )
        .await;
        report(name, "get_by_id: rotating tenants / same tenant", r);
        if let Some((off, raw_off)) = &b.rls_off {
            let t_off = &off.tenant(&TenantContext::system(b.orgs[0]));
            let r = paired(library_get!(t, b.ids, i), library_get!(t_off, b.ids, j)).await;
            report(name, "get_by_id: library RLS on / RLS off", r);
            let r = paired(
                || b.raw.get(org, cycle(&b.ids, &mut i)),
                || raw_off.get(org, cycle(&b.ids, &mut j)),
            )
            .await;
            report(name, "get_by_id: raw pool RLS on / RLS off", r);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Computed fields

/// Accounts each computed-fields organization spreads its new opportunities over.
const COMPUTED_ACCOUNTS: usize = 50;

/// A fresh organization whose accounts have `rollups` roll-ups over opportunities (open count,
/// open amount, largest amount, earliest close date: the filtered ones first) and whose
/// opportunities have `formulas` formulas; with its accounts.
async fn computed_org(crm: &Crm, rollups: usize, formulas: usize) -> (Tenant, Vec<AccountId>) {
    let org = crm
        .organizations()
        .create(NewOrganization {
            name: format!("computed {}", Uuid::now_v7().simple()),
            slug: None,
        })
        .await
        .unwrap();
    let t = crm.tenant(&TenantContext::system(org.id));
    let open = || Some(Condition::filter("status", Op::Eq, "open"));
    let specs = [
        (
            "open_count",
            CustomFieldType::Number,
            RollupFunction::Count,
            None,
            open(),
        ),
        (
            "open_amount",
            CustomFieldType::Number,
            RollupFunction::Sum,
            Some("amount_minor"),
            open(),
        ),
        (
            "biggest",
            CustomFieldType::Number,
            RollupFunction::Max,
            Some("amount_minor"),
            None,
        ),
        (
            "first_close",
            CustomFieldType::Date,
            RollupFunction::Min,
            Some("expected_close_date"),
            None,
        ),
    ];
    for (key, ty, function, field, filter) in specs.into_iter().take(rollups) {
        let mut def = NewCustomField::new(key, key, ty);
        def.computed = Some(Computed::Rollup(RollupSpec {
            entity: "opportunity".into(),
            link: "account_id".into(),
            function,
            field: field.map(Into::into),
            filter,
        }));
        t.custom_fields()
            .define(EntityKind::Account, def)
            .await
            .unwrap();
    }
    let expressions = [
        (
            "major",
            CustomFieldType::Number,
            "round(amount_minor / 100, 2)",
        ),
        (
            "label",
            CustomFieldType::Text,
            "upper(name) & ' ' & coalesce(currency, '')",
        ),
        (
            "size",
            CustomFieldType::Text,
            "if(amount_minor >= 100000, 'big', 'small')",
        ),
    ];
    for (key, ty, expression) in expressions.into_iter().take(formulas) {
        let mut def = NewCustomField::new(key, key, ty);
        def.computed = Some(Computed::Formula(FormulaSpec {
            expression: expression.into(),
        }));
        t.custom_fields()
            .define(EntityKind::Opportunity, def)
            .await
            .unwrap();
    }
    let mut accounts = Vec::with_capacity(COMPUTED_ACCOUNTS);
    for i in 0..COMPUTED_ACCOUNTS {
        let new = NewAccount {
            name: format!("Account {i}"),
            ..Default::default()
        };
        accounts.push(t.accounts().create(new).await.unwrap().id);
    }
    (t, accounts)
}

/// The cost of computed fields on writes: creating an opportunity linked to an account with
/// no roll-up, one, or four (each refreshed in the create's transaction), and one with three
/// formulas (evaluated in the write path), each in an organization of its own. The accounts'
/// opportunities grow with the run, spread over [`COMPUTED_ACCOUNTS`] accounts.
fn computed_writes(c: &mut Criterion, b: &Bench) {
    let mut g = group(c, b, "create_opportunity");
    for (name, rollups, formulas) in [
        ("no_computed", 0, 0),
        ("rollups_1", 1, 0),
        ("rollups_4", 4, 0),
        ("formulas_3", 0, 3),
    ] {
        let (t, accounts) = b.rt.block_on(computed_org(&b.crm, rollups, formulas));
        let mut n = 0_usize;
        g.bench_function(name, |x| {
            x.to_async(&b.rt).iter(|| {
                n += 1;
                let new = NewOpportunity {
                    name: format!("Deal {n}"),
                    account_id: Some(accounts[n % accounts.len()]),
                    amount_minor: Some(1_000 * (n as i64 % 500)),
                    currency: Some("EUR".into()),
                    ..Default::default()
                };
                let t = &t;
                async move { t.opportunities().create(new).await.unwrap() }
            })
        });
    }
    g.finish();
}

fn backend(c: &mut Criterion, name: &'static str) {
    let Some(b) = Bench::new(name) else {
        eprintln!("{name}: skipped (set CRM_BENCH_DATABASE_URL to measure PostgreSQL)");
        return;
    };
    paired_ratios(&b);
    get_by_id(c, &b);
    lists(c, &b);
    writes(c, &b);
    computed_writes(c, &b);
    // sqlx returns a pooled connection to its pool from a task: drop the held one in the runtime.
    let Bench { rt, held, crm, .. } = b;
    rt.block_on(async move {
        drop(held);
        crm.close().await;
    });
}

fn sqlite(c: &mut Criterion) {
    backend(c, "sqlite");
}

fn postgres(c: &mut Criterion) {
    backend(c, "postgres");
}

criterion_group!(benches, sqlite, postgres);
criterion_main!(benches);
