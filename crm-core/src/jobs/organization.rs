//! One organization's jobs, for its company admins: `t.jobs()` (the REST API's `jobs` routes).

use super::{JobInfo, JobStatus};
use crate::error::Result;
use crate::tenant::Tenant;

/// The jobs of the tenant's organization: list, retry, cancel. Company admins and API keys
/// (the HTTP layer asks for the `all` scope); operators see every organization's through
/// [`crate::Crm::jobs`].
#[derive(Debug, Clone, Copy)]
pub struct OrganizationJobs<'a> {
    tenant: &'a Tenant,
}

impl Tenant {
    /// This organization's background jobs.
    pub fn jobs(&self) -> OrganizationJobs<'_> {
        OrganizationJobs { tenant: self }
    }
}

impl OrganizationJobs<'_> {
    async fn may_steer(&self) -> Result<()> {
        self.tenant
            .require_manage("only company admins and API keys may see the organization's jobs")
            .await
    }

    /// The organization's jobs, newest first, with `status` if given, at most `limit` (1 to
    /// [`super::MAX_JOBS_PAGE`]).
    ///
    /// # Errors
    /// [`Error::Forbidden`](crate::Error::Forbidden) for users who are not company admins;
    /// [`Error::Validation`](crate::Error::Validation) for a `limit` out of range.
    pub async fn list(&self, status: Option<JobStatus>, limit: u32) -> Result<Vec<JobInfo>> {
        self.may_steer().await?;
        let crm = self.tenant.crm();
        let org = self.tenant.context().organization_id();
        crm.jobs().list(status, Some(org), limit).await
    }

    /// Runs one of the organization's dead or cancelled jobs again.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) when the organization has no dead or
    /// cancelled job with this id.
    pub async fn retry(&self, id: &str) -> Result<()> {
        self.may_steer().await?;
        let org = self.tenant.context().organization_id();
        self.tenant.crm().jobs().retry_in(id, Some(org)).await
    }

    /// Cancels one of the organization's jobs that has not run yet.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) when the organization has no pending or
    /// retrying job with this id.
    pub async fn cancel(&self, id: &str) -> Result<()> {
        self.may_steer().await?;
        let org = self.tenant.context().organization_id();
        self.tenant.crm().jobs().cancel_in(id, Some(org)).await
    }
}
