//! `jobs`: the organization's background jobs (overdue invoices, trash retention, expiry
//! sweeps), for its company admins: see them, retry the dead ones, cancel the waiting ones.

use axum::http::StatusCode;
use crm_core::{JobInfo, JobStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Tenant;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path, Query};
use crate::openapi::tags;
use crate::state::ApiState;

pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    let list = routes!(list_jobs);
    OpenApiRouter::new().routes(list).routes(routes!(steer_job))
}

/// `?status=` and `?limit=` of the job list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct JobsParams {
    /// Only jobs in this state.
    #[serde(default)]
    status: Option<JobStatus>,
    /// Jobs per answer, 1–1000 (default 100).
    #[serde(default)]
    limit: Option<u32>,
}

/// The organization's jobs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobList {
    /// Newest first.
    data: Vec<JobInfo>,
}

/// Lists the organization's background jobs, newest first: what runs, when, how often it
/// failed and why. A job that failed on every attempt is `dead` until retried. Company admins,
/// and API keys with the `all` scope.
#[utoipa::path(get, path = "/jobs", tag = tags::JOBS, params(JobsParams),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The jobs", body = JobList),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_jobs(tenant: Tenant, Query(p): Query<JobsParams>) -> ApiResult<Json<JobList>> {
    let data = tenant.jobs().list(p.status, p.limit.unwrap_or(100)).await?;
    Ok(Json(JobList { data }))
}

/// What to do with a job.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum JobVerb {
    /// Run a dead or cancelled job again, its attempts reset.
    Retry,
    /// Cancel a job that has not run yet (or waits for a retry); a running job finishes.
    Cancel,
}

/// Retries a dead or cancelled job of the organization (`retry`: it runs again, its attempts
/// reset), or cancels one that has not run yet (`cancel`: a running job finishes).
#[utoipa::path(post, path = "/jobs/{id}/{verb}", tag = tags::JOBS,
    params(("id" = String, Path, description = "Job id"), ("verb" = inline(JobVerb), Path, description = "`retry` or `cancel`")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Queued again, or cancelled"),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No job with this id in your organization in a state for it (dead or cancelled to retry; pending or retrying to cancel)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn steer_job(
    tenant: Tenant,
    Path((id, verb)): Path<(String, JobVerb)>,
) -> ApiResult<StatusCode> {
    match verb {
        JobVerb::Retry => tenant.jobs().retry(&id).await?,
        JobVerb::Cancel => tenant.jobs().cancel(&id).await?,
    }
    Ok(StatusCode::NO_CONTENT)
}
