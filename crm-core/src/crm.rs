//! The [`Crm`] handle and its builder.

use std::fmt;
use std::sync::Arc;

use crate::custom_fields::{self, DefinitionCache};
use crate::error::{Error, Result};
use crate::password::Hasher;
use crate::storage::{Backend, JobStore, Pool, PoolSettings, PoolStats};

/// The job queue of a [`Crm`] unless [`CrmBuilder::job_queue`] names another.
pub const DEFAULT_JOB_QUEUE: &str = "crm";

/// The library's entry point: a cheap-to-clone handle on the database pool and shared state.
///
/// Cloning is shallow (an `Arc`); keep one per process and clone it where needed.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use crm_core::{Crm, NewAccount, NewOrganization, TenantContext};
///
/// let crm = Crm::builder().database_url("sqlite::memory:").build().await?;
/// let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
/// let t = crm.tenant(&TenantContext::system(org.id));
/// let account = t.accounts().create(NewAccount { name: "Globex".into(), ..Default::default() }).await?;
/// assert_eq!(account.version, 1);
/// # Ok::<_, crm_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Crm {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// The database URL, for the job storage's own pool.
    url: String,
    /// The job queue's name (apalis `job_type`).
    job_queue: String,
    /// The job storage, opened and migrated on first use.
    jobs: tokio::sync::OnceCell<JobStore>,
    acquire_timeout: std::time::Duration,
    hasher: Hasher,
    definitions: DefinitionCache,
    grants: crate::access::grants::GrantsCache,
    pipelines: crate::pipelines::PipelineCache,
    webhook_policy: crate::WebhookPolicy,
    /// See [`CrmBuilder::row_level_security_alone`].
    rls_alone: bool,
}

impl fmt::Debug for Crm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crm")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Crm {
    /// A builder; see [`CrmBuilder`].
    pub fn builder() -> CrmBuilder {
        CrmBuilder::default()
    }

    /// Connects to `database_url` with default settings and applies pending migrations.
    pub async fn connect(database_url: &str) -> Result<Self> {
        Self::builder().database_url(database_url).build().await
    }

    /// Applies the pending migrations of the backend (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        match &self.inner.pool {
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => p.migrate().await,
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => p.migrate().await,
        }
    }

    /// Every migration this library embeds, and whether the database has it.
    pub async fn migration_status(&self) -> Result<Vec<MigrationStatus>> {
        let (migrator, applied) = match &self.inner.pool {
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => (
                crate::storage::postgres::migrator(),
                p.applied_migrations().await?,
            ),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => (
                crate::storage::sqlite::migrator(),
                p.applied_migrations().await?,
            ),
        };
        Ok(migrator
            .iter()
            .map(|m| MigrationStatus {
                version: m.version,
                description: m.description.to_string(),
                applied: applied.contains(&m.version),
            })
            .collect())
    }

    /// Which backend this handle talks to.
    pub fn backend(&self) -> Backend {
        self.inner.pool.backend()
    }

    /// A snapshot of the connection pool (open, idle, waits), for the host's metrics.
    pub fn pool_stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }

    /// Closes the pool's connections; in-flight calls finish first.
    pub async fn close(&self) {
        if let Some(jobs) = self.inner.jobs.get() {
            jobs.close().await;
        }
        self.inner.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The job storage, opened (and its tables created or upgraded) on first use.
    pub(crate) async fn job_store(&self) -> Result<&JobStore> {
        self.inner
            .jobs
            .get_or_try_init(|| async {
                let store = JobStore::open(
                    &self.inner.url,
                    &self.inner.job_queue,
                    self.inner.acquire_timeout,
                )
                .await?;
                store.migrate().await?;
                Ok::<_, Error>(store)
            })
            .await
    }

    /// Where webhooks may go ([`CrmBuilder::webhook_policy`]).
    pub fn webhook_policy(&self) -> crate::WebhookPolicy {
        self.inner.webhook_policy
    }

    pub(crate) fn hasher(&self) -> &Hasher {
        &self.inner.hasher
    }

    /// Drops every cached custom-field definition and every cached caller's grants
    /// ([`crate::access`]), so that the next use reads them from the database. For hosts that
    /// run several instances: call it when another instance changed a definition or access
    /// (crm-axum does, through its shared cache epoch in Redis). A change made through this
    /// handle drops its own entries already.
    pub fn forget_cached_definitions(&self) {
        self.inner.definitions.invalidate_all();
        self.inner.grants.invalidate_all();
    }

    pub(crate) fn grants_cache(&self) -> &crate::access::grants::GrantsCache {
        &self.inner.grants
    }

    /// See [`CrmBuilder::row_level_security_alone`].
    pub(crate) fn rls_alone(&self) -> bool {
        self.inner.rls_alone
    }

    pub(crate) fn definition_cache(&self) -> &DefinitionCache {
        &self.inner.definitions
    }

    pub(crate) fn pipeline_cache(&self) -> &crate::pipelines::PipelineCache {
        &self.inner.pipelines
    }
}

/// One embedded migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MigrationStatus {
    /// Its number.
    pub version: i64,
    /// Its name.
    pub description: String,
    /// Whether the database has it.
    pub applied: bool,
}

/// Builds a [`Crm`]. The backend is chosen by the URL's scheme: `postgres://…` /
/// `postgresql://…`, or `sqlite://path`, `sqlite:path`, `sqlite::memory:`.
#[derive(Clone)]
pub struct CrmBuilder {
    database_url: Option<String>,
    pool: PoolSettings,
    migrate: bool,
    postgres_role: Option<String>,
    max_concurrent_hashes: Option<usize>,
    job_queue: String,
    webhook_policy: crate::WebhookPolicy,
    rls_alone: bool,
}

impl fmt::Debug for CrmBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password.
        f.debug_struct("CrmBuilder")
            .field("database_url", &self.database_url.as_ref().map(|_| "***"))
            .field("pool", &self.pool)
            .field("migrate", &self.migrate)
            .field("postgres_role", &self.postgres_role)
            .field("job_queue", &self.job_queue)
            .field("webhook_policy", &self.webhook_policy)
            .field("rls_alone", &self.rls_alone)
            .finish()
    }
}

impl Default for CrmBuilder {
    fn default() -> Self {
        Self {
            database_url: None,
            pool: PoolSettings::default(),
            migrate: true,
            postgres_role: Some("crm_app".to_owned()),
            max_concurrent_hashes: None,
            job_queue: DEFAULT_JOB_QUEUE.to_owned(),
            webhook_policy: crate::WebhookPolicy::default(),
            rls_alone: false,
        }
    }
}

impl CrmBuilder {
    /// The database to use (required).
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// All pool settings at once.
    pub fn pool(mut self, settings: PoolSettings) -> Self {
        self.pool = settings;
        self
    }

    /// Most connections open at once.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.pool.max_connections = n.max(1);
        self
    }

    /// Whether [`CrmBuilder::build`] applies pending migrations (default `true`).
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// The PostgreSQL role every pooled connection switches to (default `crm_app`, created by
    /// the migrations). Row-level security binds that role even when the URL's user is a
    /// superuser. `None` keeps the URL's role: use it only for measurements, since a superuser
    /// or the tables' owner then bypasses row-level security.
    pub fn postgres_role(mut self, role: Option<&str>) -> Self {
        self.postgres_role = role.map(str::to_owned);
        self
    }

    /// How many password hashes may run at once (default: one per core, as
    /// [`std::thread::available_parallelism`] tells; each takes 19 MiB). Hashes beyond them
    /// queue for at most half a second; past that a sign-in answers [`Error::Overloaded`].
    pub fn max_concurrent_hashes(mut self, n: usize) -> Self {
        self.max_concurrent_hashes = Some(n);
        self
    }

    /// The job queue this handle enqueues to and its [`crate::Worker`]s take from (default
    /// `crm`): instances that share a database share their jobs through it. Another name
    /// keeps a set of instances (or a test) apart.
    pub fn job_queue(mut self, name: impl Into<String>) -> Self {
        self.job_queue = name.into();
        self
    }

    /// Where outbound webhooks may go: by default only `https` URLs of public addresses. Allow
    /// `http` and private networks for development against a local receiver.
    pub fn webhook_policy(mut self, policy: crate::WebhookPolicy) -> Self {
        self.webhook_policy = policy;
        self
    }

    /// Leaves the screening of restricted readers' reads to PostgreSQL's row-level security
    /// alone: the library adds no reach condition of its own to what they read (field rules
    /// still apply). For the tests that prove the policies of migration `0018_record_visibility`
    /// hold by themselves; never for serving, since reads made inside writes run as the
    /// writing role, which the policies do not narrow. [`CrmBuilder::build`] refuses it on
    /// SQLite, which has no row-level security.
    #[doc(hidden)]
    pub fn row_level_security_alone(mut self) -> Self {
        self.rls_alone = true;
        self
    }

    /// Connects (and migrates unless told not to).
    ///
    /// # Errors
    /// [`Error::Config`] for a missing or unsupported URL (or a backend not compiled in);
    /// [`Error::Storage`] / [`Error::Migration`] when the database cannot be reached or migrated.
    pub async fn build(self) -> Result<Crm> {
        let url = self
            .database_url
            .as_deref()
            .ok_or_else(|| Error::Config("a database URL is required".into()))?;
        let pool = connect(url, &self).await?;
        if self.rls_alone && pool.backend() != Backend::Postgres {
            return Err(Error::Config(
                "row-level security exists only on PostgreSQL".into(),
            ));
        }
        let crm = Crm {
            inner: Arc::new(Inner {
                pool,
                url: url.to_owned(),
                job_queue: self.job_queue.clone(),
                jobs: tokio::sync::OnceCell::new(),
                acquire_timeout: self.pool.acquire_timeout,
                hasher: match self.max_concurrent_hashes {
                    Some(n) => Hasher::new(n, crate::password::MAX_WAIT)?,
                    None => Hasher::per_core()?,
                },
                definitions: custom_fields::new_cache(),
                grants: crate::access::grants::new_cache(),
                pipelines: crate::pipelines::new_cache(),
                webhook_policy: self.webhook_policy,
                rls_alone: self.rls_alone,
            }),
        };
        if self.migrate {
            crm.migrate().await?;
        }
        Ok(crm)
    }
}

async fn connect(url: &str, b: &CrmBuilder) -> Result<Pool> {
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        #[cfg(feature = "postgres")]
        {
            use std::str::FromStr as _;
            let options = sqlx::postgres::PgConnectOptions::from_str(url)
                .map_err(|e| Error::Config(format!("invalid PostgreSQL URL: {e}")))?;
            crate::storage::postgres::check_tls_files(&options)?;
            return Ok(Pool::Postgres(
                crate::storage::postgres::PgPool::connect(
                    options,
                    b.postgres_role.clone(),
                    &b.pool,
                )
                .await?,
            ));
        }
        #[cfg(not(feature = "postgres"))]
        return Err(Error::Config(
            "PostgreSQL support is not compiled in (feature `postgres`)".into(),
        ));
    }
    if url.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        return Ok(Pool::Sqlite(
            crate::storage::sqlite::connect(url, &b.pool).await?,
        ));
        #[cfg(not(feature = "sqlite"))]
        return Err(Error::Config(
            "SQLite support is not compiled in (feature `sqlite`)".into(),
        ));
    }
    Err(Error::Config(
        "unsupported database URL: expected postgres://… or sqlite:…".into(),
    ))
}
