//! `api-keys`: machine credentials of the caller's organization (company admins).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use crm_core::auth::{ApiKey, ApiKeyId, ApiKeyScope, ApiKeyScopes, NewApiKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::openapi::tags;
use crate::state::ApiState;

pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

/// An API key as listed (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiKeyView {
    /// Id.
    id: Uuid,
    /// What it is for.
    name: String,
    /// The start of the key, its own for each key (everything before the secret).
    prefix: String,
    /// What it may do.
    #[schema(schema_with = crm_core::api_key_scopes)]
    scopes: ApiKeyScopes,
    /// Who created it.
    created_by: Option<Uuid>,
    /// Created at.
    created_at: DateTime<Utc>,
    /// When it was revoked.
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id.uuid(),
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes,
            created_by: k.created_by,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiKeyRequest {
    /// What it is for.
    name: String,
    /// What it may do (default `["forms"]`): `forms` (post web forms), `<entity>:read`,
    /// `<entity>:write` (write includes read) for any entity, or `all`.
    #[serde(default)]
    #[schema(schema_with = crm_core::api_key_scopes)]
    scopes: Option<Vec<String>>,
}

/// A key just created: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedApiKey {
    /// The key.
    api_key: ApiKeyView,
    /// Send as `Authorization: Bearer <key>` (web forms may send `X-API-Key: <key>`). Store it
    /// now: it is never shown again.
    key: String,
}

/// Keys listed, for [`list_keys`].
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiKeyList {
    /// The keys, revoked ones too.
    data: Vec<ApiKeyView>,
}

/// Lists the organization's API keys (company admins).
#[utoipa::path(get, path = "/api-keys", tag = tags::API_KEYS, security(("bearer" = [])),
    responses(
        (status = 200, description = "The keys", body = ApiKeyList),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_keys(tenant: Tenant) -> ApiResult<Json<ApiKeyList>> {
    let keys = tenant.api_keys().list().await?;
    Ok(Json(ApiKeyList {
        data: keys.into_iter().map(ApiKeyView::from).collect(),
    }))
}

/// Creates an API key (company admins) with its scopes; its secret is in this response only.
///
/// A key reaches only what its scopes name (403 `out_of_scope` elsewhere): `forms` the web-form
/// post, `<entity>:read` that entity's reads, `<entity>:write` its writes and reads, `all`
/// everything an API key may do. Without `scopes` a key gets `["forms"]`.
#[utoipa::path(post, path = "/api-keys", tag = tags::API_KEYS, request_body = CreateApiKeyRequest, security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = CreatedApiKey),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_key(
    tenant: Tenant,
    Json(req): Json<CreateApiKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    tenant.user_id()?;
    let scopes = scopes(req.scopes)?;
    let (key, secret) = tenant
        .api_keys()
        .create(NewApiKey {
            name: req.name,
            scopes,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            api_key: key.into(),
            key: secret,
        }),
    ))
}

/// The scopes asked for; `forms` when none are named (the least a key is made for).
fn scopes(asked: Option<Vec<String>>) -> crm_core::Result<Vec<ApiKeyScope>> {
    let Some(asked) = asked else {
        return Ok(vec![ApiKeyScope::Forms]);
    };
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (i, s) in asked.iter().enumerate() {
        match s.parse() {
            Ok(scope) => out.push(scope),
            Err(crm_core::Error::Validation(e)) => {
                errors.extend(e.into_iter().map(|f| crm_core::FieldError {
                    field: format!("scopes[{i}]"),
                    ..f
                }));
            }
            Err(other) => return Err(other),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(crm_core::Error::Validation(errors))
    }
}

/// Revokes an API key (company admins).
#[utoipa::path(delete, path = "/api-keys/{id}", tag = tags::API_KEYS,
    params(("id" = Uuid, Path, description = "API key id")), security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn revoke_key(
    State(state): State<ApiState>,
    tenant: Tenant,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    tenant.api_keys().revoke(ApiKeyId::from_uuid(id)).await?;
    state.auth.forget_api_keys().await;
    Ok(StatusCode::NO_CONTENT)
}
