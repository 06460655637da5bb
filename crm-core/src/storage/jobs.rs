//! Where jobs wait: apalis's PostgreSQL or SQLite storage, on a small sqlx pool of its own next
//! to the library's (apalis takes a sqlx pool; the jobs tables are not tenant tables).
//!
//! PostgreSQL: schema `apalis` (its migrations, recorded in `apalis._sqlx_migrations`, need the
//! `hstore` extension), reached as the URL's role. SQLite: tables `Jobs` and `Workers` in the
//! same file, its migrations recorded in `_apalis_migrations` (the library's own are in
//! `_crm_migrations`, a host application's may be in `_sqlx_migrations`). apalis's own SQLite
//! `setup` is not used: it would switch the file's connections to `synchronous = OFF`.
//!
//! Operators read and steer jobs through [`JobStore::list`], [`JobStore::retry`] and
//! [`JobStore::cancel`], which address apalis's tables directly: apalis 1.0 exposes no
//! status update for its SQL storages.

use std::str::FromStr as _;
use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskId, TaskSink as _};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The jobs storage of one backend, and the queue (apalis `job_type`) this library uses.
#[derive(Debug, Clone)]
pub(crate) enum JobStore {
    #[cfg(feature = "postgres")]
    Postgres { pool: sqlx::PgPool, queue: String },
    #[cfg(feature = "sqlite")]
    Sqlite {
        pool: sqlx::SqlitePool,
        queue: String,
    },
}

/// Connections of the jobs pool: a worker polls and beats on one, an operator command or the
/// planner uses another.
const JOB_CONNECTIONS: u32 = 3;

/// How often a worker tells the storage it is alive.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(5);
/// Heartbeats a worker may miss before its jobs are taken back.
pub(crate) const MISSED_HEARTBEATS: usize = 6;

fn storage_error(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("job storage: {e}"))
}

/// Runs `$body` with the store's pool and queue, and `$sql` the statement of its backend: the
/// PostgreSQL text, or the SQLite one (apalis's tables have other names and types there).
macro_rules! per_backend {
    ($store:expr, $pg:expr, $lite:expr, |$sql:ident, $pool:ident, $queue:ident| $body:expr) => {
        match $store {
            #[cfg(feature = "postgres")]
            JobStore::Postgres {
                pool: $pool,
                queue: $queue,
            } => {
                let $sql = $pg;
                $body
            }
            #[cfg(feature = "sqlite")]
            JobStore::Sqlite {
                pool: $pool,
                queue: $queue,
            } => {
                let $sql = $lite;
                $body
            }
        }
    };
}

/// apalis's storage `$apalis::$storage` of `$queue` with this library's heartbeats.
macro_rules! apalis_storage {
    ($apalis:ident :: $storage:ident, $pool:expr, $queue:expr) => {
        $apalis::$storage::new($pool).with_config(
            $apalis::Config::default()
                .queue($queue)
                .heartbeat_interval($crate::storage::jobs::HEARTBEAT)
                .missed_heartbeats($crate::storage::jobs::MISSED_HEARTBEATS),
        )
    };
}
pub(crate) use apalis_storage;

/// Runs `$body` with `$storage` bound to apalis's storage of the store's backend and queue,
/// beating every 5 s: a worker silent for 30 s has its jobs taken back (run again elsewhere).
macro_rules! with_apalis_storage {
    ($store:expr, |$storage:ident| $body:expr) => {
        match $store {
            #[cfg(feature = "postgres")]
            $crate::storage::JobStore::Postgres { pool, queue } => {
                let $storage = $crate::storage::jobs::apalis_storage!(
                    apalis_postgres::PostgresStorage,
                    pool,
                    queue
                );
                $body
            }
            #[cfg(feature = "sqlite")]
            $crate::storage::JobStore::Sqlite { pool, queue } => {
                let $storage = $crate::storage::jobs::apalis_storage!(
                    apalis_sqlite::SqliteStorage,
                    pool,
                    queue
                );
                $body
            }
        }
    };
}
pub(crate) use with_apalis_storage;

impl JobStore {
    /// Opens the jobs pool for the database `url` (the library's own), for `queue`.
    pub(crate) async fn open(url: &str, queue: &str, timeout: Duration) -> Result<Self> {
        let queue = queue.to_owned();
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            #[cfg(feature = "postgres")]
            {
                let options = sqlx::postgres::PgConnectOptions::from_str(url)
                    .map_err(|e| Error::Config(format!("invalid PostgreSQL URL: {e}")))?
                    .application_name("crm-jobs")
                    // apalis names its tables `apalis.…` but casts to `hstore` unqualified: the
                    // extension is found (and, on a fresh database, created) in `apalis`,
                    // whatever search path the URL sets for the library's own tables.
                    .options([("search_path", "apalis, public")]);
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(JOB_CONNECTIONS)
                    .acquire_timeout(timeout)
                    .connect_lazy_with(options);
                return Ok(Self::Postgres { pool, queue });
            }
        }
        #[cfg(feature = "sqlite")]
        if url.starts_with("sqlite:") {
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .map_err(|e| Error::Config(format!("invalid SQLite URL: {e}")))?
                .create_if_missing(true)
                .foreign_keys(true)
                .busy_timeout(timeout);
            let options = if memory {
                options
            } else {
                options
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            };
            // In memory, the jobs live in a database of their own, in one connection kept
            // for the life of the pool.
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(if memory { 1 } else { JOB_CONNECTIONS })
                .min_connections(u32::from(memory))
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(timeout)
                .connect_with(options)
                .await
                .map_err(storage_error)?;
            return Ok(Self::Sqlite { pool, queue });
        }
        Err(Error::Config(format!(
            "no job storage for this database URL (backend not compiled in): {}",
            url.split(':').next().unwrap_or_default()
        )))
    }

    /// Creates or upgrades apalis's tables.
    pub(crate) async fn migrate(&self) -> Result<()> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres { pool, .. } => {
                apalis_postgres::PostgresStorage::<()>::setup(pool)
                    .await
                    .map_err(storage_error)?;
            }
            #[cfg(feature = "sqlite")]
            Self::Sqlite { pool, .. } => {
                // Not sqlx's default `_sqlx_migrations`: a host application's own migrations
                // may be recorded there, in the same file.
                let mut migrator = apalis_sqlite::SqliteStorage::<()>::migrations();
                migrator.dangerous_set_table_name("_apalis_migrations");
                migrator.run(pool).await.map_err(storage_error)?;
            }
        }
        Ok(())
    }

    /// Enqueues `job` to run at `run_at` (now when `None`) with at most `max_attempts` runs.
    /// With a `key`, a job of the same key already enqueued (done or not) makes this a no-op.
    /// Answers the new job's id, or `None` when the key was taken.
    pub(crate) async fn push<J>(
        &self,
        job: J,
        key: Option<&str>,
        run_at: Option<DateTime<Utc>>,
        max_attempts: usize,
    ) -> Result<Option<String>>
    where
        J: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static,
    {
        if let Some(key) = key
            && self.has_key(key).await?
        {
            return Ok(None);
        }
        let id = ulid::Ulid::generate();
        let mut task = TaskBuilder::new(job)
            .task_id(TaskId::Ulid(id))
            .max_attempts(max_attempts);
        if let Some(at) = run_at {
            task = task.run_at_timestamp(u64::try_from(at.timestamp()).unwrap_or_default());
        }
        if let Some(key) = key {
            task = task.idempotency_key(key);
        }
        let task = task.build();
        let pushed = with_apalis_storage!(self, |storage| {
            let mut sink = storage;
            sink.push_task(task).await.map_err(storage_error)
        });
        match (pushed, key) {
            (Ok(()), _) => Ok(Some(id.to_string())),
            // Another worker enqueued the same key meanwhile (the unique index refused ours).
            (Err(_), Some(key)) if self.has_key(key).await? => Ok(None),
            (Err(e), _) => Err(e),
        }
    }

    async fn has_key(&self, key: &str) -> Result<bool> {
        Ok(!self.list(None, Some(key)).await?.is_empty())
    }

    /// The queue's jobs, newest first; of `organization` (the payload's `organization_id`) and
    /// with idempotency `key`, when given.
    pub(crate) async fn list(
        &self,
        organization: Option<uuid::Uuid>,
        key: Option<&str>,
    ) -> Result<Vec<JobRow>> {
        let org = organization.map(|o| o.to_string());
        let rows: Vec<JobRow> = per_backend!(
            self,
            "select id, convert_from(job, 'UTF8') as job, status, attempts::bigint as attempts,
                    max_attempts::bigint as max_attempts,
                    extract(epoch from run_at)::bigint as run_at,
                    extract(epoch from done_at)::bigint as done_at,
                    last_result::text as last_result
             from apalis.jobs
             where job_type = $1
               and ($2::text is null or convert_from(job, 'UTF8')::jsonb ->> 'organization_id' = $2)
               and ($3::text is null or idempotency_key = $3)
             order by run_at desc, id desc",
            "select id, cast(job as text) as job, status, attempts, max_attempts, run_at,
                    done_at, last_result
             from Jobs
             where job_type = ?1
               and (?2 is null or json_extract(cast(job as text), '$.organization_id') = ?2)
               and (?3 is null or idempotency_key = ?3)
             order by run_at desc, id desc",
            |sql, pool, queue| sqlx::query_as(sql)
                .bind(queue)
                .bind(org)
                .bind(key)
                .fetch_all(pool)
                .await
                .map_err(storage_error)?
        );
        Ok(rows)
    }

    /// Puts a dead or cancelled job back in the queue, attempts reset: whether one was.
    pub(crate) async fn retry(&self, id: &str, org: Option<uuid::Uuid>) -> Result<bool> {
        self.update(
            id,
            org,
            "update apalis.jobs set status = 'Pending', attempts = 0, lock_by = null, lock_at = null,
                 done_at = null, run_at = now()
             where id = $1 and job_type = $2 and status in ('Failed', 'Killed')
               and ($3::text is null or convert_from(job, 'UTF8')::jsonb ->> 'organization_id' = $3)",
            "update Jobs set status = 'Pending', attempts = 0, lock_by = null, lock_at = null,
                 done_at = null, run_at = strftime('%s', 'now')
             where id = ?1 and job_type = ?2 and status in ('Failed', 'Killed')
               and (?3 is null or json_extract(cast(job as text), '$.organization_id') = ?3)",
        )
        .await
    }

    /// Cancels a job that waits to run (or to be retried): it stays listed, as cancelled,
    /// and never runs. A running job is not interrupted. Answers whether one was cancelled.
    pub(crate) async fn cancel(&self, id: &str, org: Option<uuid::Uuid>) -> Result<bool> {
        self.update(
            id,
            org,
            "update apalis.jobs set status = 'Killed', done_at = now(),
                 last_result = '{\"Err\": \"cancelled by an operator\"}'
             where id = $1 and job_type = $2 and status in ('Pending', 'Failed')
               and ($3::text is null or convert_from(job, 'UTF8')::jsonb ->> 'organization_id' = $3)",
            "update Jobs set status = 'Killed', done_at = strftime('%s', 'now'),
                 last_result = '{\"Err\": \"cancelled by an operator\"}'
             where id = ?1 and job_type = ?2 and status in ('Pending', 'Failed')
               and (?3 is null or json_extract(cast(job as text), '$.organization_id') = ?3)",
        )
        .await
    }

    /// Runs the PostgreSQL or the SQLite form of an update of one job (of `org` when given):
    /// whether it matched.
    async fn update(
        &self,
        id: &str,
        org: Option<uuid::Uuid>,
        postgres: &'static str,
        sqlite: &'static str,
    ) -> Result<bool> {
        let org = org.map(|o| o.to_string());
        let n = per_backend!(self, postgres, sqlite, |sql, pool, queue| sqlx::query(sql)
            .bind(id)
            .bind(queue)
            .bind(org)
            .execute(pool)
            .await
            .map_err(storage_error)?
            .rows_affected());
        Ok(n > 0)
    }

    /// Deletes finished jobs (done, dead or cancelled) that ended before `before`: the
    /// queue's own retention. Answers how many.
    pub(crate) async fn forget_finished(&self, before: DateTime<Utc>) -> Result<u64> {
        let n = per_backend!(
            self,
            "delete from apalis.jobs where job_type = $1 and done_at < to_timestamp($2)
               and (status in ('Done', 'Killed') or (status = 'Failed' and attempts >= max_attempts))",
            "delete from Jobs where job_type = ?1 and done_at < ?2
               and (status in ('Done', 'Killed') or (status = 'Failed' and attempts >= max_attempts))",
            |sql, pool, queue| sqlx::query(sql)
                .bind(queue)
                .bind(before.timestamp())
                .execute(pool)
                .await
                .map_err(storage_error)?
                .rows_affected()
        );
        Ok(n)
    }

    /// Closes the jobs pool.
    pub(crate) async fn close(&self) {
        per_backend!(self, (), (), |_sql, pool, _queue| pool.close().await);
    }
}

/// A row of apalis's jobs table, as both backends read it (times in Unix seconds, the
/// payload as JSON text, the status and last result as apalis writes them).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JobRow {
    pub(crate) id: String,
    pub(crate) job: String,
    pub(crate) status: String,
    pub(crate) attempts: i64,
    pub(crate) max_attempts: i64,
    pub(crate) run_at: i64,
    pub(crate) done_at: Option<i64>,
    pub(crate) last_result: Option<String>,
}
