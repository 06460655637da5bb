//! `custom-fields/{entity}`: the custom field definitions of an entity. Everyone reads them;
//! company admins define, change and archive them (crm-core enforces it).

use axum::extract::State;
use axum::http::StatusCode;
use crm_core::{CustomFieldDefinition, CustomFieldPatch, EntityKind, NewCustomField, Page};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::openapi::tags;
use crate::state::ApiState;

pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_fields, define_field))
        .routes(routes!(update_field, archive_field))
}

/// The entity of a path segment; an unknown entity is an unknown route (404).
pub(crate) fn entity(plural: &str) -> ApiResult<EntityKind> {
    EntityKind::from_table(plural).ok_or(ApiError::NoRoute)
}

/// Lists the definitions of an entity, archived ones included.
#[utoipa::path(get, path = "/custom-fields/{entity}", tag = tags::CUSTOM_FIELDS,
    params(("entity" = String, Path, description = "The entity, by its URL segment (`contacts`)")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Every definition (not paged)", body = Page<CustomFieldDefinition>),
        (status = 404, description = "No such entity", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_fields(
    tenant: Tenant,
    Path(plural): Path<String>,
) -> ApiResult<Json<Page<CustomFieldDefinition>>> {
    Ok(Json(Page {
        data: tenant.custom_fields().list(entity(&plural)?).await?,
        next_cursor: None,
    }))
}

/// Defines a custom field (company admins).
#[utoipa::path(post, path = "/custom-fields/{entity}", tag = tags::CUSTOM_FIELDS,
    params(("entity" = String, Path, description = "The entity, by its URL segment (`contacts`)")),
    request_body = NewCustomField, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Defined", body = CustomFieldDefinition),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entity", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The key exists (archived or not)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn define_field(
    State(state): State<ApiState>,
    tenant: Tenant,
    Path(plural): Path<String>,
    Json(new): Json<NewCustomField>,
) -> ApiResult<(StatusCode, Json<CustomFieldDefinition>)> {
    let def = tenant.custom_fields().define(entity(&plural)?, new).await?;
    state.auth.changed().await;
    Ok((StatusCode::CREATED, Json(def)))
}

/// Changes a custom field definition (company admins).
#[utoipa::path(patch, path = "/custom-fields/{entity}/{key}", tag = tags::CUSTOM_FIELDS,
    params(
        ("entity" = String, Path, description = "The entity, by its URL segment (`contacts`)"),
        ("key" = String, Path, description = "The field's key"),
    ),
    request_body = CustomFieldPatch, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Changed", body = CustomFieldDefinition),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entity or field in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_field(
    State(state): State<ApiState>,
    tenant: Tenant,
    Path((plural, key)): Path<(String, String)>,
    Json(patch): Json<CustomFieldPatch>,
) -> ApiResult<Json<CustomFieldDefinition>> {
    let def = tenant
        .custom_fields()
        .update(entity(&plural)?, &key, patch)
        .await?;
    state.auth.changed().await;
    Ok(Json(def))
}

/// Archives a custom field (company admins): records keep its values, it takes no new ones.
#[utoipa::path(delete, path = "/custom-fields/{entity}/{key}", tag = tags::CUSTOM_FIELDS,
    params(
        ("entity" = String, Path, description = "The entity, by its URL segment (`contacts`)"),
        ("key" = String, Path, description = "The field's key"),
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Archived", body = CustomFieldDefinition),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entity or field in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn archive_field(
    State(state): State<ApiState>,
    tenant: Tenant,
    Path((plural, key)): Path<(String, String)>,
) -> ApiResult<Json<CustomFieldDefinition>> {
    let def = tenant
        .custom_fields()
        .archive(entity(&plural)?, &key)
        .await?;
    state.auth.changed().await;
    Ok(Json(def))
}
