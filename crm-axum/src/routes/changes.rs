//! `changes`: the organization's change feed, oldest first, for integrations that catch up.

use crm_core::{Change, Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Tenant;
use crate::error::ApiResult;
use crate::extract::{Json, Query};
use crate::openapi::tags;
use crate::state::ApiState;

pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_changes))
        .routes(routes!(changes_head))
}

/// `?after=` and `?limit=` of the change feed.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ChangesParams {
    /// The cursor of the last change you handled (a change's `cursor`, a page's `next_cursor`
    /// or `GET /changes/head`); from the beginning when absent.
    #[serde(default)]
    after: Option<String>,
    /// Changes per page, 1–1000 (default 100).
    #[serde(default)]
    limit: Option<u32>,
}

/// Lists the organization's changes in commit order: every create, update, trashing, restore,
/// purge and erasure of every entity, users and settings included, each with its actor and the
/// fields it changed (tombstones of purged and erased records carry none). A reader never misses
/// a change that commits after it passed by: poll with the last `cursor` you handled;
/// `next_cursor` is set while more changes are waiting. Company admins, and API keys with the
/// `changes` (or `all`) scope. When the operator's retention policy deleted changes after your
/// cursor, the answer is 410 `cursor_expired`, never a page with a gap.
#[utoipa::path(get, path = "/changes", tag = tags::CHANGES, params(ChangesParams),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The next changes, oldest first", body = Page<Change>),
        (status = 403, description = "Not a company admin, or a key without the `changes` scope", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 410, description = "`cursor_expired`: changes after the cursor were deleted by the retention policy; read again from the beginning", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
async fn list_changes(
    tenant: Tenant,
    Query(p): Query<ChangesParams>,
) -> ApiResult<Json<Page<Change>>> {
    let page = tenant
        .changes()
        .after(p.after.as_deref(), p.limit.unwrap_or(100))
        .await?;
    Ok(Json(page))
}

/// Where the feed ends now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FeedHead {
    /// Pass it as `after` to read only the changes committed from now on.
    cursor: String,
}

/// The cursor of the feed's present end, for a reader that starts now instead of from the
/// beginning.
#[utoipa::path(get, path = "/changes/head", tag = tags::CHANGES,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The present end of the feed", body = FeedHead),
        (status = 403, description = "Not a company admin, or a key without the `changes` scope", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
async fn changes_head(tenant: Tenant) -> ApiResult<Json<FeedHead>> {
    let cursor = tenant.changes().head().await?;
    Ok(Json(FeedHead { cursor }))
}
