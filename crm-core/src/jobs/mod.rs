//! Background jobs, on the [apalis](https://docs.rs/apalis) job library with the database as
//! the store (PostgreSQL schema `apalis`, or tables of the SQLite file).
//!
//! - [`Job`]: what can run (today the daily maintenance of each organization: overdue invoices,
//!   trash retention, expiry of idempotency keys and refresh tokens).
//! - [`Jobs`] (`crm.jobs()`): what operators see and steer: list, retry, cancel, enqueue.
//! - [`Worker`]: runs jobs until told to stop, and plans the daily ones. `crm worker` runs one;
//!   `crm serve` runs one in process unless `--no-worker`; an embedding app runs its own.
//!
//! Guarantees: a job that fails is retried with exponential backoff and jitter (1 s doubling
//! to 5 min by default, up to [`DEFAULT_MAX_ATTEMPTS`] runs), then stays *dead* with its error
//! until an operator retries it. A worker that dies mid-job stops beating; after 30 s its
//! jobs are taken back and run again (at least once). Stopping a worker lets running jobs
//! finish (up to a grace period) and leaves the waiting ones in the store.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use crm_core::{Crm, Job, JobStatus, NewOrganization};
//!
//! let crm = Crm::connect("sqlite::memory:").await?;
//! let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
//! let id = crm.jobs().enqueue(Job::SweepExpired { organization_id: org.id }).await?;
//! let waiting = crm.jobs().list(Some(JobStatus::Pending), None, 10).await?;
//! assert_eq!(waiting[0].id, id);
//! # Ok::<_, crm_core::Error>(())
//! # }).unwrap();
//! ```

mod job;
mod organization;
mod worker;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use job::Job;
pub use organization::OrganizationJobs;
pub use worker::Worker;

use crate::crm::Crm;
use crate::error::{Error, Result};
use crate::organizations::{OrganizationId, OrganizationStatus};
use crate::storage::JobRow;
use crate::time::within_years;

/// Runs a job gets by default before it is dead: the first and 9 retries.
pub const DEFAULT_MAX_ATTEMPTS: usize = 10;
/// The most jobs [`Jobs::list`] answers at once.
pub const MAX_JOBS_PAGE: u32 = 1_000;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for its time or for a worker.
    Pending,
    /// A worker runs it.
    Running,
    /// Finished well.
    Done,
    /// Failed; runs again.
    Retrying,
    /// Failed on every attempt (or cannot succeed): stays until an operator retries it. The
    /// dead-letter state.
    Dead,
    /// Cancelled by an operator before it ran.
    Cancelled,
}

impl std::str::FromStr for JobStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
            Error::invalid(
                "status",
                "invalid",
                "one of pending, running, done, retrying, dead, cancelled",
            )
        })
    }
}

/// A job as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobInfo {
    /// Its id (a ULID, given by the job library).
    pub id: String,
    /// What it does; `None` if this version of the library cannot read it.
    pub job: Option<Job>,
    /// Where it stands.
    pub status: JobStatus,
    /// Runs so far.
    pub attempts: u32,
    /// Runs it gets before it is dead.
    pub max_attempts: u32,
    /// When it runs (or ran).
    pub run_at: DateTime<Utc>,
    /// When it finished (done, dead or cancelled).
    pub done_at: Option<DateTime<Utc>>,
    /// The last failure's message.
    pub error: Option<String>,
}

impl JobInfo {
    fn from_row(row: JobRow) -> Self {
        let attempts = u32::try_from(row.attempts).unwrap_or_default();
        let max_attempts = u32::try_from(row.max_attempts).unwrap_or_default();
        let cancelled = row
            .last_result
            .as_deref()
            .is_some_and(|r| r.contains(CANCELLED));
        let status = match row.status.as_str() {
            "Pending" | "Queued" => JobStatus::Pending,
            "Running" => JobStatus::Running,
            "Done" => JobStatus::Done,
            "Failed" if attempts < max_attempts => JobStatus::Retrying,
            "Killed" if cancelled => JobStatus::Cancelled,
            _ => JobStatus::Dead,
        };
        let at = |secs: i64| DateTime::from_timestamp(secs, 0).unwrap_or_default();
        // apalis keeps `{"Ok": …}` or `{"Err": "…"}`: the error's text is what operators read.
        let error = row
            .last_result
            .and_then(|r| serde_json::from_str::<serde_json::Value>(&r).ok())
            .and_then(|v| {
                v.get("Err")
                    .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
            });
        JobInfo {
            id: row.id,
            job: serde_json::from_str(&row.job).ok(),
            status,
            attempts,
            max_attempts,
            run_at: at(row.run_at),
            done_at: row.done_at.map(at),
            error,
        }
    }
}

/// `Ok` when an update of a job matched it, else [`Error::NotFound`].
fn found(matched: bool) -> Result<()> {
    matched.then_some(()).ok_or(Error::NotFound {
        entity: "job",
        id: None,
    })
}

/// What a cancelled job's last result says (see `storage/jobs.rs`).
const CANCELLED: &str = "cancelled by an operator";

/// Operator access to the job queue: `crm.jobs()`.
#[derive(Debug, Clone, Copy)]
pub struct Jobs<'a> {
    crm: &'a Crm,
}

impl Crm {
    /// The job queue (opened, and its tables created or upgraded, on first use).
    pub fn jobs(&self) -> Jobs<'_> {
        Jobs { crm: self }
    }
}

impl Jobs<'_> {
    /// Enqueues `job` to run now, with [`DEFAULT_MAX_ATTEMPTS`]: its id.
    pub async fn enqueue(&self, job: Job) -> Result<String> {
        let store = self.crm.job_store().await?;
        store
            .push(job, None, None, DEFAULT_MAX_ATTEMPTS)
            .await?
            .ok_or_else(|| Error::Internal("a job without a key was refused".into()))
    }

    /// Enqueues the daily jobs of every active organization for the UTC day of `now`: at most
    /// once a day each, however many workers plan. Answers how many were added.
    pub async fn plan_daily(&self, now: DateTime<Utc>) -> Result<u64> {
        let store = self.crm.job_store().await?;
        let mut added = 0;
        let mut after = None;
        loop {
            let orgs = self.crm.organizations().list(after, 100).await?;
            let Some(last) = orgs.last() else {
                return Ok(added);
            };
            after = Some(last.id);
            for org in orgs
                .iter()
                .filter(|o| o.status == OrganizationStatus::Active)
            {
                for (job, key) in Job::daily(org.id, now.date_naive()) {
                    let pushed = store.push(job, Some(&key), None, DEFAULT_MAX_ATTEMPTS);
                    if pushed.await?.is_some() {
                        added += 1;
                    }
                }
            }
        }
    }

    /// The queue's jobs, newest first: with `status`, of `organization` when given, at most
    /// `limit` (1 to [`MAX_JOBS_PAGE`]).
    pub async fn list(
        &self,
        status: Option<JobStatus>,
        organization: Option<OrganizationId>,
        limit: u32,
    ) -> Result<Vec<JobInfo>> {
        crate::validation::page_limit(limit, MAX_JOBS_PAGE)?;
        let rows = self
            .crm
            .job_store()
            .await?
            .list(organization.map(|o| o.uuid()), None)
            .await?;
        Ok(rows
            .into_iter()
            .map(JobInfo::from_row)
            .filter(|j| status.is_none_or(|s| j.status == s))
            .take(limit as usize)
            .collect())
    }

    /// Runs a dead or cancelled job again, attempts reset.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no dead or cancelled job has this id.
    pub async fn retry(&self, id: &str) -> Result<()> {
        self.retry_in(id, None).await
    }

    /// [`Jobs::retry`] of a job of `org` only, when given.
    pub(crate) async fn retry_in(&self, id: &str, org: Option<OrganizationId>) -> Result<()> {
        let store = self.crm.job_store().await?;
        found(store.retry(id, org.map(|o| o.uuid())).await?)
    }

    /// Cancels a job that has not run yet (or waits for a retry); a running one finishes.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no pending or retrying job has this id.
    pub async fn cancel(&self, id: &str) -> Result<()> {
        self.cancel_in(id, None).await
    }

    /// [`Jobs::cancel`] of a job of `org` only, when given.
    pub(crate) async fn cancel_in(&self, id: &str, org: Option<OrganizationId>) -> Result<()> {
        let store = self.crm.job_store().await?;
        found(store.cancel(id, org.map(|o| o.uuid())).await?)
    }

    /// Deletes the finished jobs (done, dead, cancelled) that ended before `before`; the
    /// worker does it daily for those older than 30 days. Answers how many.
    ///
    /// # Errors
    /// [`Error::Validation`] (`out_of_range`) for a time outside the years 1 to 9999.
    pub async fn forget_finished(&self, before: DateTime<Utc>) -> Result<u64> {
        let before = within_years("before", before)?;
        self.crm.job_store().await?.forget_finished(before).await
    }
}
