//! `users`: the users of the caller's organization.

use axum::extract::State;
use axum::http::StatusCode;
use crm_core::{NewUser, Page, Password, PasswordKind, Role, User, UserId};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::Tenant;
use crate::auth::limits::limit_key;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path, Query};
use crate::openapi::tags;
use crate::state::ApiState;
use crate::views::Paging;

pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
        .routes(routes!(set_password))
        .routes(routes!(change_own_password))
}

/// A password set by a company admin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetPasswordRequest {
    /// The new password (8–1024 characters).
    #[schema(value_type = String, format = Password)]
    password: Password,
}

/// The caller's own password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangePasswordRequest {
    /// The password now.
    #[schema(value_type = String, format = Password)]
    current_password: Password,
    /// The new one (8–1024 characters).
    #[schema(value_type = String, format = Password)]
    new_password: Password,
    /// The refresh token of the session the change comes from: its family keeps working; every
    /// other session of the user ends. Without it, every session ends.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    refresh_token: Option<Password>,
}

/// Reads one user of the caller's organization.
#[utoipa::path(get, path = "/users/{id}", tag = tags::USERS,
    params(("id" = Uuid, Path, description = "User id")), security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 403, description = "API keys do not read users", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_user(tenant: Tenant, Path(id): Path<Uuid>) -> ApiResult<Json<User>> {
    tenant.user_id()?;
    Ok(Json(tenant.users().get(UserId::from_uuid(id)).await?))
}

/// Sets a user's password (company admins; not for a role above their own). Every session of
/// the user ends. Another user's password is temporary: until they change it with
/// `POST me/password`, their access tokens reach only that route and `GET me` (403
/// `password_change_required` elsewhere); an admin setting their own keeps it.
#[utoipa::path(put, path = "/users/{id}/password", tag = tags::USERS, request_body = SetPasswordRequest,
    params(("id" = Uuid, Path, description = "User id")), security(("bearer" = [])),
    responses(
        (status = 204, description = "Set"),
        (status = 403, description = "Not an admin, or a role above the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in your organization", body = Problem, content_type = "application/problem+json"),
    ))]
async fn set_password(
    State(state): State<ApiState>,
    tenant: Tenant,
    Path(id): Path<Uuid>,
    Json(req): Json<SetPasswordRequest>,
) -> ApiResult<StatusCode> {
    let me = tenant.user_id()?;
    let id = UserId::from_uuid(id);
    let kind = if id == me {
        PasswordKind::Permanent
    } else {
        PasswordKind::Temporary
    };
    tenant.users().set_password(id, &req.password, kind).await?;
    state
        .auth
        .forget(tenant.context().organization_id().uuid(), id.uuid())
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the caller's own password; the current one is required (401 when wrong) and the new
/// one must differ from it. The caller's other sessions end. This is how a temporary password
/// set by an admin is replaced (the one route, with `GET me`, that such a user reaches).
#[utoipa::path(post, path = "/me/password", tag = tags::USERS, request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed"),
        (status = 403, description = "An API key has no password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong current passwords (counted as failed sign-ins)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn change_own_password(
    State(state): State<ApiState>,
    tenant: Tenant,
    Json(req): Json<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    let me = tenant.user_id()?;
    // Wrong current passwords count like failed sign-ins of the account (with their backoff):
    // a stolen access token is no way to guess the password.
    let failures = &state.auth.login_failures;
    let account = limit_key(&[b"password-change", me.uuid().as_bytes()]);
    failures.check(&account).await?;
    let keep = match &req.refresh_token {
        Some(token) => state.crm.auth().refresh_family(token.expose(), me).await?,
        None => None,
    };
    match tenant
        .users()
        .change_own_password(&req.current_password, &req.new_password, keep)
        .await
    {
        Ok(()) => {
            failures.reset(&account).await;
            // A temporary password no longer restricts the caller's tokens, here at once.
            state
                .auth
                .forget(tenant.context().organization_id().uuid(), me.uuid())
                .await;
        }
        Err(e @ crm_core::Error::Unauthenticated) => {
            failures.hit(account).await;
            #[cfg(feature = "metrics")]
            crate::metrics::login_failed("password_change");
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A new user of the caller's organization.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUserRequest {
    /// Email (unique in the organization, ignoring case).
    email: String,
    /// Display name.
    name: String,
    /// Initial password (8–1024 characters); absent for a user who cannot sign in yet.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    password: Option<Password>,
    /// Role; never above the caller's own.
    role: Role,
}

/// A change to a user's name, email, role and/or activation; absent fields are kept. Name and
/// email: the user themselves or a company admin; role and activation: company admins.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateUserRequest {
    /// The new display name.
    #[serde(default)]
    name: Option<String>,
    /// The new email (unique in the organization, ignoring case).
    #[serde(default)]
    email: Option<String>,
    /// The new role; never above the caller's own.
    #[serde(default)]
    role: Option<Role>,
    /// `false` deactivates the user (their refresh tokens are revoked; access tokens stop
    /// working within the principal cache's lifetime); `true` reactivates them.
    #[serde(default)]
    is_active: Option<bool>,
}

/// Lists the users of the caller's organization.
#[utoipa::path(get, path = "/users", tag = tags::USERS, params(Paging), security(("bearer" = [])),
    responses(
        (status = 200, description = "One page", body = Page<User>),
        (status = 403, description = "API keys do not list users", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_users(tenant: Tenant, Query(p): Query<Paging>) -> ApiResult<Json<Page<User>>> {
    // People's emails are for people: API keys (machines) do not list them.
    tenant.user_id()?;
    let rows = tenant
        .users()
        .list(p.cursor.map(UserId::from_uuid), p.size())
        .await?;
    Ok(Json(p.page(rows, |u| u.id.uuid())))
}

/// Creates a user (company admins; not above their own role).
#[utoipa::path(post, path = "/users", tag = tags::USERS, request_body = CreateUserRequest, security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = User),
        (status = 403, description = "Not an admin, or a role above the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Email taken", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_user(
    tenant: Tenant,
    Json(req): Json<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let user = tenant
        .users()
        .create(NewUser {
            email: req.email,
            name: req.name,
            password: req.password,
            role: req.role,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Changes a user's name or email (the user or a company admin), role or activation (company
/// admins; not above their own role). The organization keeps at least one active company admin
/// (409 otherwise).
#[utoipa::path(patch, path = "/users/{id}", tag = tags::USERS, request_body = UpdateUserRequest,
    params(("id" = Uuid, Path, description = "User id")), security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = User),
        (status = 403, description = "Not an admin, or a role above the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in your organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It would leave the organization without an active company admin (`last_admin`), or the email is taken (`duplicate`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_user(
    State(state): State<ApiState>,
    tenant: Tenant,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateUserRequest>,
) -> ApiResult<Json<User>> {
    let id = UserId::from_uuid(id);
    let users = tenant.users();
    let out = async {
        if req.name.is_some() || req.email.is_some() {
            users.update_profile(id, req.name, req.email).await?;
        }
        let mut user = match req.role {
            Some(role) => users.set_role(id, role).await?,
            None => users.get(id).await?,
        };
        user = match req.is_active {
            Some(false) => users.deactivate(id).await?,
            Some(true) => users.reactivate(id).await?,
            None => user,
        };
        Ok::<_, crm_core::Error>(user)
    }
    .await;
    // Even a half-done change (a role set, then a 409) leaves cached principals stale.
    state
        .auth
        .forget(tenant.context().organization_id().uuid(), id.uuid())
        .await;
    Ok(Json(out?))
}
