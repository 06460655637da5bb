//! Access: `permission-sets` (and assigning them to users and API keys), `teams` and their
//! members (company admins change them; crm-core enforces it), and the shares of one record,
//! `{entity}/{id}/shares` (whoever may change the record).

use axum::http::{HeaderMap, StatusCode};
use crm_core::access::{
    NewPermissionSet, NewShare, NewTeam, PermissionSet, PermissionSetId, PermissionSetPatch, Share,
    Team, TeamId, TeamMember, TeamPatch,
};
use crm_core::{Page, User, UserId};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::openapi::tags;
use crate::routes::custom_fields::entity;
use crate::routes::records::if_match;
use crate::state::ApiState;

pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_sets, create_set))
        .routes(routes!(get_set, update_set, delete_set))
        .routes(routes!(assign_to_user))
        .routes(routes!(assign_to_api_key))
        .routes(routes!(assign_to_webhook_subscription))
        .routes(routes!(list_teams, create_team))
        .routes(routes!(get_team, update_team, delete_team))
        .routes(routes!(list_members))
        .routes(routes!(get_member, add_member, remove_member))
        .routes(routes!(list_shares, share))
        .routes(routes!(revoke_share))
}

/// A whole list, as one page.
fn all<T>(data: Vec<T>) -> Json<Page<T>> {
    Json(Page {
        data,
        next_cursor: None,
    })
}

/// The permission set a user or an API key is given.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignPermissionSet {
    /// The set; `null`: back to the built-in access of the holder's role.
    permission_set_id: Option<Uuid>,
}

/// Lists the organization's permission sets (company admins, and API keys with `all`).
#[utoipa::path(get, path = "/permission-sets", tag = tags::PERMISSION_SETS,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Every set, by name (not paged)", body = Page<PermissionSet>),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_sets(tenant: Tenant) -> ApiResult<Json<Page<PermissionSet>>> {
    Ok(all(tenant.permission_sets().list().await?))
}

/// Creates a permission set: the reach into each entity's records and the rules of fields.
#[utoipa::path(post, path = "/permission-sets", tag = tags::PERMISSION_SETS,
    request_body = NewPermissionSet, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = PermissionSet),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken (`duplicate`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad name, an unknown entity or field", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_set(
    tenant: Tenant,
    Json(new): Json<NewPermissionSet>,
) -> ApiResult<(StatusCode, Json<PermissionSet>)> {
    let set = tenant.permission_sets().create(new).await?;
    Ok((StatusCode::CREATED, Json(set)))
}

/// One permission set.
#[utoipa::path(get, path = "/permission-sets/{id}", tag = tags::PERMISSION_SETS,
    params(("id" = Uuid, Path, description = "Permission set id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The set", body = PermissionSet),
        (status = 404, description = "No such set in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_set(
    tenant: Tenant,
    Path(id): Path<PermissionSetId>,
) -> ApiResult<Json<PermissionSet>> {
    Ok(Json(tenant.permission_sets().get(id).await?))
}

/// Changes a permission set (at the version in `If-Match`, when given); its holders act with
/// the new rules at once.
#[utoipa::path(patch, path = "/permission-sets/{id}", tag = tags::PERMISSION_SETS,
    params(
        ("id" = Uuid, Path, description = "Permission set id"),
        ("If-Match" = Option<String>, Header, description = "The set's version (`\"3\"`); 412 when it changed since"),
    ),
    request_body = PermissionSetPatch, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Changed", body = PermissionSet),
        (status = 404, description = "No such set in your organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken (`duplicate`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_set(
    tenant: Tenant,
    Path(id): Path<PermissionSetId>,
    headers: HeaderMap,
    Json(patch): Json<PermissionSetPatch>,
) -> ApiResult<Json<PermissionSet>> {
    let version = if_match(&headers)?;
    Ok(Json(
        tenant.permission_sets().update(id, version, patch).await?,
    ))
}

/// Deletes a permission set no user or API key holds.
#[utoipa::path(delete, path = "/permission-sets/{id}", tag = tags::PERMISSION_SETS,
    params(("id" = Uuid, Path, description = "Permission set id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such set in your organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Held by users or API keys (`in_use`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_set(tenant: Tenant, Path(id): Path<PermissionSetId>) -> ApiResult<StatusCode> {
    tenant.permission_sets().delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives a user a permission set (`null`: their role's built-in access). A company admin's set
/// takes effect only if they become a `user` again.
#[utoipa::path(put, path = "/users/{id}/permission-set", tag = tags::PERMISSION_SETS,
    params(("id" = Uuid, Path, description = "User id")),
    request_body = AssignPermissionSet, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The user, with the set", body = User),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user or set in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn assign_to_user(
    tenant: Tenant,
    Path(id): Path<UserId>,
    Json(req): Json<AssignPermissionSet>,
) -> ApiResult<Json<User>> {
    let set = req.permission_set_id.map(PermissionSetId::from_uuid);
    Ok(Json(
        tenant.permission_sets().assign_to_user(id, set).await?,
    ))
}

/// Gives an API key a permission set (`null`: the built-in access of the `user` role); its
/// scopes still narrow it.
#[utoipa::path(put, path = "/api-keys/{id}/permission-set", tag = tags::PERMISSION_SETS,
    params(("id" = Uuid, Path, description = "API key id")),
    request_body = AssignPermissionSet, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Assigned"),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such live key or set in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn assign_to_api_key(
    tenant: Tenant,
    Path(id): Path<Uuid>,
    Json(req): Json<AssignPermissionSet>,
) -> ApiResult<StatusCode> {
    let set = req.permission_set_id.map(PermissionSetId::from_uuid);
    tenant.permission_sets().assign_to_api_key(id, set).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes a webhook subscription deliver with a permission set (`null`: every record and
/// field): records out of the set's reach arrive as tombstones, fields it hides are removed.
#[utoipa::path(put, path = "/webhook-subscriptions/{id}/permission-set", tag = tags::PERMISSION_SETS,
    params(("id" = Uuid, Path, description = "Webhook subscription id")),
    request_body = AssignPermissionSet, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Assigned"),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription or set in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn assign_to_webhook_subscription(
    tenant: Tenant,
    Path(id): Path<Uuid>,
    Json(req): Json<AssignPermissionSet>,
) -> ApiResult<StatusCode> {
    let set = req.permission_set_id.map(PermissionSetId::from_uuid);
    tenant
        .permission_sets()
        .assign_to_webhook_subscription(id, set)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists the organization's teams (every user reads them).
#[utoipa::path(get, path = "/teams", tag = tags::TEAMS,
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Every team, by name (not paged)", body = Page<Team>)))]
async fn list_teams(tenant: Tenant) -> ApiResult<Json<Page<Team>>> {
    Ok(all(tenant.teams().list().await?))
}

/// Creates a team (company admins).
#[utoipa::path(post, path = "/teams", tag = tags::TEAMS,
    request_body = NewTeam, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = Team),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken (`duplicate`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad name, or a manager who is no active user of the organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_team(
    tenant: Tenant,
    Json(new): Json<NewTeam>,
) -> ApiResult<(StatusCode, Json<Team>)> {
    let team = tenant.teams().create(new).await?;
    Ok((StatusCode::CREATED, Json(team)))
}

/// One team.
#[utoipa::path(get, path = "/teams/{id}", tag = tags::TEAMS,
    params(("id" = Uuid, Path, description = "Team id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The team", body = Team),
        (status = 404, description = "No such team in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_team(tenant: Tenant, Path(id): Path<TeamId>) -> ApiResult<Json<Team>> {
    Ok(Json(tenant.teams().get(id).await?))
}

/// Changes a team's name, description or manager (company admins; at the version in
/// `If-Match`, when given).
#[utoipa::path(patch, path = "/teams/{id}", tag = tags::TEAMS,
    params(
        ("id" = Uuid, Path, description = "Team id"),
        ("If-Match" = Option<String>, Header, description = "The team's version (`\"3\"`); 412 when it changed since"),
    ),
    request_body = TeamPatch, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Changed", body = Team),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such team in your organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken (`duplicate`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_team(
    tenant: Tenant,
    Path(id): Path<TeamId>,
    headers: HeaderMap,
    Json(patch): Json<TeamPatch>,
) -> ApiResult<Json<Team>> {
    let version = if_match(&headers)?;
    Ok(Json(tenant.teams().update(id, version, patch).await?))
}

/// Deletes a team, its memberships and the shares granted to it (company admins).
#[utoipa::path(delete, path = "/teams/{id}", tag = tags::TEAMS,
    params(("id" = Uuid, Path, description = "Team id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such team in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_team(tenant: Tenant, Path(id): Path<TeamId>) -> ApiResult<StatusCode> {
    tenant.teams().delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The members of a team, in the order they were added.
#[utoipa::path(get, path = "/teams/{id}/members", tag = tags::TEAMS,
    params(("id" = Uuid, Path, description = "Team id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Every member (not paged)", body = Page<TeamMember>),
        (status = 404, description = "No such team in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_members(tenant: Tenant, Path(id): Path<TeamId>) -> ApiResult<Json<Page<TeamMember>>> {
    Ok(all(tenant.teams().members(id).await?))
}

/// One member of a team.
#[utoipa::path(get, path = "/teams/{id}/members/{user_id}", tag = tags::TEAMS,
    params(
        ("id" = Uuid, Path, description = "Team id"),
        ("user_id" = Uuid, Path, description = "User id"),
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The membership", body = TeamMember),
        (status = 404, description = "No such team, or the user is not in it", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_member(
    tenant: Tenant,
    Path((id, user)): Path<(TeamId, UserId)>,
) -> ApiResult<Json<TeamMember>> {
    let members = tenant.teams().members(id).await?;
    members
        .into_iter()
        .find(|m| m.user_id == user)
        .map(Json)
        .ok_or_else(|| crm_core::Error::not_found("team_member", user).into())
}

/// Adds a user to a team (company admins); adding a member again changes nothing.
#[utoipa::path(put, path = "/teams/{id}/members/{user_id}", tag = tags::TEAMS,
    params(
        ("id" = Uuid, Path, description = "Team id"),
        ("user_id" = Uuid, Path, description = "User id"),
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The membership", body = TeamMember),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such team in your organization", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The user is no active user of the organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn add_member(
    tenant: Tenant,
    Path((id, user)): Path<(TeamId, UserId)>,
) -> ApiResult<Json<TeamMember>> {
    Ok(Json(tenant.teams().add_member(id, user).await?))
}

/// Takes a user out of a team (company admins).
#[utoipa::path(delete, path = "/teams/{id}/members/{user_id}", tag = tags::TEAMS,
    params(
        ("id" = Uuid, Path, description = "Team id"),
        ("user_id" = Uuid, Path, description = "User id"),
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not a company admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such team, or the user is not in it", body = Problem, content_type = "application/problem+json"),
    ))]
async fn remove_member(
    tenant: Tenant,
    Path((id, user)): Path<(TeamId, UserId)>,
) -> ApiResult<StatusCode> {
    tenant.teams().remove_member(id, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The shares of one record (whoever may read it).
#[utoipa::path(get, path = "/{entity}/{id}/shares", tag = tags::SHARES,
    params(
        ("entity" = String, Path, description = "The entity, by its URL segment (`contacts`)"),
        ("id" = Uuid, Path, description = "Record id"),
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Every share (not paged)", body = Page<Share>),
        (status = 404, description = "No such entity, or no such live record within reach", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_shares(
    tenant: Tenant,
    Path((plural, id)): Path<(String, Uuid)>,
) -> ApiResult<Json<Page<Share>>> {
    Ok(all(tenant
        .shares()
        .list_for_record(entity(&plural)?, id)
        .await?))
}

/// Shares a record with a user or a team, for reading or writing (whoever may change it);
/// sharing again with the same grantee changes the access. Shares stay when the record's owner
/// changes.
#[utoipa::path(post, path = "/{entity}/{id}/shares", tag = tags::SHARES,
    params(
        ("entity" = String, Path, description = "The entity, by its URL segment (`contacts`)"),
        ("id" = Uuid, Path, description = "Record id"),
    ),
    request_body = NewShare, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The share", body = Share),
        (status = 403, description = "The caller may read the record but not change it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entity, or no such live record within reach", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No such active user or team in the organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn share(
    tenant: Tenant,
    Path((plural, id)): Path<(String, Uuid)>,
    Json(new): Json<NewShare>,
) -> ApiResult<Json<Share>> {
    let grantee = crm_core::access::Grantee::new(new.grantee_kind, new.grantee_id);
    Ok(Json(
        tenant
            .shares()
            .share(entity(&plural)?, id, grantee, new.access)
            .await?,
    ))
}

/// Revokes the share of a record with a user or a team (whoever may change the record).
#[utoipa::path(delete, path = "/{entity}/{id}/shares/{grantee_id}", tag = tags::SHARES,
    params(
        ("entity" = String, Path, description = "The entity, by its URL segment (`contacts`)"),
        ("id" = Uuid, Path, description = "Record id"),
        ("grantee_id" = Uuid, Path, description = "The user's or the team's id"),
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "The caller may read the record but not change it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such record within reach, or no such share", body = Problem, content_type = "application/problem+json"),
    ))]
async fn revoke_share(
    tenant: Tenant,
    Path((plural, id, grantee)): Path<(String, Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    tenant
        .shares()
        .revoke(entity(&plural)?, id, grantee)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
