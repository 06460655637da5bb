//! `organizations`: tenants, for super-admins.

use axum::http::StatusCode;
use crm_core::{NewOrganization, Organization, OrganizationId, OrganizationStatus, Page};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path, Query};
use crate::openapi::tags;
use crate::state::ApiState;
use crate::views::Paging;

pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_organizations, create_organization))
        .routes(routes!(update_organization))
}

/// A change of status: suspend or resume.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateOrganizationRequest {
    /// The new status.
    status: OrganizationStatus,
}

/// Lists organizations (super-admins).
#[utoipa::path(get, path = "/organizations", tag = tags::ORGANIZATIONS, params(Paging), security(("bearer" = [])),
    responses(
        (status = 200, description = "One page", body = Page<Organization>),
        (status = 403, description = "Not a super-admin", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_organizations(
    state: axum::extract::State<ApiState>,
    tenant: Tenant,
    Query(p): Query<Paging>,
) -> ApiResult<Json<Page<Organization>>> {
    let rows = state
        .crm
        .organizations_for(tenant.context())?
        .list(p.cursor.map(OrganizationId::from_uuid), p.size())
        .await?;
    Ok(Json(p.page(rows, |o| o.id.uuid())))
}

/// Creates an organization (super-admins).
#[utoipa::path(post, path = "/organizations", tag = tags::ORGANIZATIONS, request_body = NewOrganization, security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Organization),
        (status = 403, description = "Not a super-admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Slug taken", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_organization(
    state: axum::extract::State<ApiState>,
    tenant: Tenant,
    Json(new): Json<NewOrganization>,
) -> ApiResult<(StatusCode, Json<Organization>)> {
    let org = state
        .crm
        .organizations_for(tenant.context())?
        .create(new)
        .await?;
    Ok((StatusCode::CREATED, Json(org)))
}

/// Suspends or resumes an organization (super-admins). Its users are refused within the
/// principal cache's lifetime.
#[utoipa::path(patch, path = "/organizations/{id}", tag = tags::ORGANIZATIONS, request_body = UpdateOrganizationRequest,
    params(("id" = Uuid, Path, description = "Organization id")), security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = Organization),
        (status = 403, description = "Not a super-admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_organization(
    state: axum::extract::State<ApiState>,
    tenant: Tenant,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateOrganizationRequest>,
) -> ApiResult<Json<Organization>> {
    let status = req.status;
    let org = state
        .crm
        .organizations_for(tenant.context())?
        .set_status(OrganizationId::from_uuid(id), status)
        .await?;
    // Its users' cached state no longer holds, here or on other instances.
    state.auth.forget_principals().await;
    Ok(Json(org))
}
