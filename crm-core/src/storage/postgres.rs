//! PostgreSQL: a pool of connections that remember which tenant they are bound to.
//!
//! Row-level security (see `crm-core/migrations/postgres`) lets the `crm_app` role see a row only
//! when its `organization_id` equals the session setting `crm.org_id`. Setting it costs a round
//! trip, and a read that does `BEGIN / set_config / SELECT / COMMIT` pays four. So each pooled
//! connection records the tenant it was last bound to (a session-level setting, made outside any
//! transaction so no rollback can undo it) and rebinds only when a different tenant takes it: a
//! read for the tenant the connection already serves is a single round trip.
//!
//! Every connection runs `set_config('role', 'crm_app', false)` once when it opens, so even a
//! superuser URL (which would bypass row-level security) is held to the policies. The pool is
//! [`bb8`] over plain [`PgConnection`]s because sqlx's own pool has no place for per-connection
//! state; migrations run on a separate connection with the URL's own role.

use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::postgres::{PgArguments, PgConnectOptions};
use sqlx::types::Json;
use sqlx::{Arguments as _, Connection as _, PgConnection};
use uuid::Uuid;

use super::{Arg, Conn, Tx};
use crate::error::{Error, Result};
use crate::storage::PoolSettings;

/// The session setting the row-level-security policies read.
const TENANT_SETTING: &str = "crm.org_id";

/// A pooled connection.
pub(crate) type PooledConn = bb8::PooledConnection<'static, Manager>;

/// The PostgreSQL pool.
#[derive(Clone)]
pub(crate) struct PgPool {
    pool: bb8::Pool<Manager>,
    /// For migrations, which run with the URL's own role on a connection of their own.
    options: std::sync::Arc<PgConnectOptions>,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The options hold the password: show only the pool's state.
        f.debug_struct("PgPool")
            .field("state", &self.pool.state())
            .finish_non_exhaustive()
    }
}

/// A connection and the tenant it is bound to.
#[derive(Debug)]
pub(crate) struct TenantConn {
    conn: PgConnection,
    tenant: Option<Uuid>,
    /// Set when an I/O or protocol error left the connection unusable; bb8 then drops it.
    broken: AtomicBool,
}

/// Opens connections for [`bb8`] and puts each under the application role.
#[derive(Debug)]
pub(crate) struct Manager {
    options: PgConnectOptions,
    role: Option<String>,
}

impl bb8::ManageConnection for Manager {
    type Connection = TenantConn;
    type Error = sqlx::Error;

    async fn connect(&self) -> Result<TenantConn, sqlx::Error> {
        let mut conn = PgConnection::connect_with(&self.options).await?;
        if let Some(role) = &self.role {
            sqlx::query("select set_config('role', $1, false)")
                .bind(role)
                .execute(&mut conn)
                .await?;
        }
        Ok(TenantConn {
            conn,
            tenant: None,
            broken: AtomicBool::new(false),
        })
    }

    async fn is_valid(&self, conn: &mut TenantConn) -> Result<(), sqlx::Error> {
        conn.conn.ping().await
    }

    fn has_broken(&self, conn: &mut TenantConn) -> bool {
        conn.broken.load(Ordering::Relaxed)
    }
}

impl PgPool {
    /// Builds the pool; `role` is the role the connections act as (`None` keeps the URL's role,
    /// which disables row-level security when that role is a superuser or owns the tables).
    pub(crate) async fn connect(
        options: PgConnectOptions,
        role: Option<String>,
        settings: &PoolSettings,
    ) -> Result<Self> {
        let manager = Manager {
            options: options.clone(),
            role,
        };
        let pool = bb8::Pool::builder()
            .max_size(settings.max_connections)
            .min_idle(Some(settings.min_connections).filter(|n| *n > 0))
            .connection_timeout(settings.acquire_timeout)
            .idle_timeout(settings.idle_timeout)
            .max_lifetime(settings.max_lifetime)
            // A ping per checkout would double the round trips of every read; broken
            // connections are detected from the errors they return instead.
            .test_on_check_out(false)
            .build(manager)
            .await?;
        Ok(Self {
            pool,
            options: std::sync::Arc::new(options),
        })
    }

    /// Takes a connection and binds it to `tenant` (or to none), rebinding only on change.
    pub(crate) async fn tenant(&self, tenant: Option<Uuid>) -> Result<PooledConn> {
        let mut c = self.pool.get_owned().await.map_err(|e| match e {
            bb8::RunError::User(e) => Error::Storage(e),
            bb8::RunError::TimedOut => Error::Storage(sqlx::Error::PoolTimedOut),
        })?;
        if c.tenant != tenant {
            // Forget the binding first: if the statement fails the connection's state is unknown.
            c.tenant = None;
            let value = tenant.map(|t| t.to_string()).unwrap_or_default();
            let TenantConn { conn, broken, .. } = &mut *c;
            sqlx::query("select set_config($1, $2, false)")
                .bind(TENANT_SETTING)
                .bind(value)
                .execute(&mut *conn)
                .await
                .map_err(|e| track(e, broken))?;
            c.tenant = tenant;
        }
        Ok(c)
    }

    /// Applies the embedded migrations on a dedicated connection with the URL's own role (the
    /// owner of the tables), never the restricted application role.
    pub(crate) async fn migrate(&self) -> Result<()> {
        let mut conn = PgConnection::connect_with(&self.options).await?;
        migrator().run(&mut conn).await?;
        conn.close().await?;
        Ok(())
    }
}

impl PgPool {
    /// The versions recorded as applied (none when the table does not exist yet), read with the
    /// URL's own role: the application role cannot read the migrations table.
    pub(crate) async fn applied_migrations(&self) -> Result<Vec<i64>> {
        let mut conn = PgConnection::connect_with(&self.options).await?;
        let rows: std::result::Result<Vec<(i64,)>, sqlx::Error> =
            sqlx::query_as("select version from _crm_migrations where success")
                .fetch_all(&mut conn)
                .await;
        conn.close().await.ok();
        match rows {
            Ok(rows) => Ok(rows.into_iter().map(|(v,)| v).collect()),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The migrations in `crm-core/migrations/postgres`, recorded in `_crm_migrations` so that they
/// never mix with a host application's own `_sqlx_migrations`.
pub(crate) fn migrator() -> sqlx::migrate::Migrator {
    let mut m = sqlx::migrate!("migrations/postgres");
    m.dangerous_set_table_name("_crm_migrations");
    m
}

pub(crate) fn conn(c: &mut PooledConn) -> Conn<'_> {
    let TenantConn { conn, broken, .. } = &mut **c;
    Conn::Postgres(conn, broken)
}

pub(crate) async fn begin(c: &mut PooledConn) -> Result<Tx<'_>> {
    let TenantConn { conn, broken, .. } = &mut **c;
    match conn.begin().await {
        Ok(tx) => Ok(Tx::Postgres(tx, broken)),
        Err(e) => Err(track(e, broken)),
    }
}

/// Drops a connection instead of returning it to the pool (PostgreSQL then ends whatever
/// transaction it was in).
pub(crate) fn discard(c: PooledConn) {
    c.broken.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Marks the connection broken when `e` says it is, and converts the error.
pub(crate) fn track(e: sqlx::Error, broken: &AtomicBool) -> Error {
    if matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
    ) {
        broken.store(true, Ordering::Relaxed);
    }
    Error::from(e)
}

/// Binds the values of a statement as PostgreSQL arguments.
pub(crate) fn args(values: &[Arg]) -> Result<PgArguments> {
    let mut out = PgArguments::default();
    for v in values {
        let r = match v {
            Arg::Uuid(v) => out.add(*v),
            Arg::Text(v) => out.add(v.as_deref()),
            Arg::Int(v) => out.add(*v),
            Arg::Float(v) => out.add(*v),
            Arg::Bool(v) => out.add(*v),
            Arg::Time(v) => out.add(*v),
            Arg::Date(v) => out.add(*v),
            Arg::Json(v) => out.add(v.as_ref().map(Json)),
        };
        r.map_err(|e| Error::Storage(sqlx::Error::Encode(e)))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! The library's own pooled connections are held to row-level security even though the
    //! test URL names a superuser. (Behaviour tests live in `tests/`; this one needs the pool.)
    use super::*;
    use crate::crm::Crm;
    use crate::storage::{Pool, Sql};
    use crate::{NewAccount, NewOrganization, TenantContext};

    #[tokio::test]
    async fn pooled_connections_act_as_crm_app_and_see_one_tenant() {
        let Ok(url) = std::env::var("CRM_TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("CRM_TEST_REQUIRE_POSTGRES").is_none(),
                "PostgreSQL suite skipped"
            );
            return;
        };
        let schema = format!("crm_unit_{}", Uuid::now_v7().simple());
        let mut admin = PgConnection::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("create schema {schema}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        let crm = Crm::connect(&format!("{url}{sep}options=-c%20search_path%3D{schema}"))
            .await
            .unwrap();

        let mut orgs = Vec::new();
        for name in ["A", "B"] {
            let org = crm
                .organizations()
                .create(NewOrganization {
                    name: name.into(),
                    slug: None,
                })
                .await
                .unwrap();
            let t = crm.tenant(&TenantContext::system(org.id));
            for i in 0..2 {
                t.accounts()
                    .create(NewAccount {
                        name: format!("{name}{i}"),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
            }
            orgs.push(org.id);
        }
        let Pool::Postgres(pool) = crm.pool() else {
            panic!("PostgreSQL pool expected")
        };

        // Statements on a session bound to A, with no tenant filter of their own.
        let mut c = pool.tenant(Some(orgs[0].uuid())).await.unwrap();
        let (user,): (String,) = conn(&mut c)
            .fetch_one(&Sql::new("select current_user::text"))
            .await
            .unwrap();
        assert_eq!(user, "crm_app");
        let (n,): (i64,) = conn(&mut c)
            .fetch_one(&Sql::new("select count(*) from accounts"))
            .await
            .unwrap();
        assert_eq!(
            n, 2,
            "only A's accounts, although the statement has no tenant filter"
        );
        drop(c);

        // Rebinding the same connections to B, then to no tenant at all.
        let mut c = pool.tenant(Some(orgs[1].uuid())).await.unwrap();
        let (names,): (String,) = conn(&mut c)
            .fetch_one(&Sql::new(
                "select string_agg(name, ',' order by name) from accounts",
            ))
            .await
            .unwrap();
        assert_eq!(names, "B0,B1");
        drop(c);
        let mut c = pool.tenant(None).await.unwrap();
        let (n,): (i64,) = conn(&mut c)
            .fetch_one(&Sql::new("select count(*) from accounts"))
            .await
            .unwrap();
        assert_eq!(n, 0, "a session bound to no tenant sees no tenant rows");
    }
}
