//! `auth/register`, `auth/login`, `auth/refresh`, `auth/logout` and `me`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use crm_core::{
    NewOrganization, NewUser, OrganizationId, Password, Principal, Role, TenantContext, Validator,
};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::limits::{LimitKey, RateLimiter, limit_key};
use crate::auth::{Tenant, client_addr, forbidden, limit_network};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::Json;
use crate::openapi::tags;
use crate::state::ApiState;

pub(crate) fn public() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

pub(crate) fn protected() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(me))
}

/// Sign-up: a new organization and its first company admin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterRequest {
    /// The organization's display name.
    pub(crate) organization_name: String,
    /// Its short name (used to sign in); derived from the name when absent.
    #[serde(default)]
    pub(crate) organization_slug: Option<String>,
    /// The admin's display name.
    pub(crate) name: String,
    /// The admin's email.
    pub(crate) email: String,
    /// The admin's password (8–1024 characters).
    #[schema(value_type = String, format = Password)]
    pub(crate) password: Password,
}

/// Sign-in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    /// The organization's slug.
    pub(crate) organization: String,
    /// Email.
    pub(crate) email: String,
    /// Password.
    #[schema(value_type = String, format = Password)]
    pub(crate) password: Password,
}

/// A refresh token presented to `auth/refresh` or `auth/logout`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshRequest {
    /// The refresh token.
    pub(crate) refresh_token: String,
}

/// Tokens issued at sign-in and refresh.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenResponse {
    /// The JWT to send as `Authorization: Bearer …`.
    pub(crate) access_token: String,
    /// Always `Bearer`.
    pub(crate) token_type: &'static str,
    /// Seconds until the access token expires.
    pub(crate) expires_in: u64,
    /// Single use: trade it at `auth/refresh` for a new pair. Reusing one signs out everywhere
    /// it was passed on.
    pub(crate) refresh_token: String,
    /// The password was set by someone else (an admin or operator) and must be changed first:
    /// until `POST me/password` succeeds, the access token reaches only that route and `GET me`
    /// (403 `password_change_required` elsewhere).
    pub(crate) password_change_required: bool,
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MeResponse {
    /// The signed-in user.
    pub(crate) user: crm_core::User,
    /// Their organization.
    pub(crate) organization: crm_core::Organization,
}

/// The longest organization slug (as crm-core allows) and email (RFC 5321) a sign-in takes.
const MAX_SLUG: usize = 63;
const MAX_EMAIL: usize = 254;

/// The client's address as the per-address limits count it, when the server recorded it
/// (`into_make_service_with_connect_info`): the connection's peer, or the address a trusted
/// proxy forwarded ([`crate::AuthConfig::trusted_proxies`]); for IPv6, its whole network
/// ([`crate::AuthConfig::ipv6_limit_prefix`]).
pub(crate) struct ClientAddr(pub(crate) Option<IpNet>);

impl FromRequestParts<ApiState> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            if !state.auth.warned_no_address.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "no client address (the server runs without ConnectInfo): per-address \
                     sign-in and sign-up limits are off; serve with \
                     into_make_service_with_connect_info::<SocketAddr>() (crm_axum::server::serve does)"
                );
            }
            return Ok(ClientAddr(None));
        };
        let config = &state.auth.config;
        let client = client_addr(peer.ip(), &parts.headers, &config.trusted_proxies);
        Ok(ClientAddr(Some(limit_network(
            client,
            config.ipv6_limit_prefix,
        ))))
    }
}

/// Counts one attempt from `addr` against `limiter`; refused when its budget is spent. Without
/// an address there is nothing to count by (all clients would share one budget).
async fn spend(limiter: &RateLimiter, scope: &[u8], addr: Option<IpNet>) -> ApiResult<()> {
    let Some(addr) = addr else {
        return Ok(());
    };
    let key = limit_key(&[scope, addr.to_string().as_bytes()]);
    Ok(limiter.spend(key).await?)
}

async fn tokens(state: &ApiState, principal: &Principal) -> ApiResult<TokenResponse> {
    let (access_token, expires_in) = state.auth.issue(principal)?;
    let refresh = state
        .crm
        .auth()
        .issue_refresh_token(principal, state.auth.config.refresh_ttl)
        .await?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
        refresh_token: refresh.token,
        password_change_required: principal.must_change_password,
    })
}

/// Creates an organization and its first company admin, and signs the admin in.
#[utoipa::path(post, path = "/auth/register", tag = tags::AUTH, request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and signed in", body = TokenResponse),
        (status = 403, description = "Registration is switched off", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The slug is taken", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many sign-ups or sign-ins from this address", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many password checks queued; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn register(
    State(state): State<ApiState>,
    ClientAddr(addr): ClientAddr,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<TokenResponse>)> {
    if !state.auth.config.registration {
        return Err(forbidden(
            "registration_off",
            "registration is switched off",
        ));
    }
    // Sign-ups have a per-address budget of their own: creating organizations in a loop is
    // unwelcome, and signing up must not spend the budget of signing in.
    spend(&state.auth.signups, b"sign-up", addr).await?;
    // One transaction: the organization and its first admin both exist afterwards, or neither.
    let (org, admin) = state
        .crm
        .organizations()
        .create_with_admin(
            NewOrganization {
                name: req.organization_name,
                slug: req.organization_slug,
            },
            NewUser {
                email: req.email,
                name: req.name,
                password: Some(req.password),
                role: Role::CompanyAdmin,
            },
        )
        .await?;
    let principal = Principal {
        organization_id: org.id,
        user_id: admin.id,
        role: admin.role,
        must_change_password: admin.must_change_password,
    };
    Ok((StatusCode::CREATED, Json(tokens(&state, &principal).await?)))
}

/// Signs in with an organization slug, email and password.
///
/// Rate limited per client address, and per account as tried from one address (failed
/// attempts, with backoff); a 429 says in `Retry-After` how long to wait.
#[utoipa::path(post, path = "/auth/login", tag = tags::AUTH, request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Wrong credentials, deactivated user or suspended organization", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many password checks queued; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn login(
    State(state): State<ApiState>,
    ClientAddr(addr): ClientAddr,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    // Bounded before anything else looks at them (limits, database, logs).
    let mut v = Validator::new();
    v.text("organization", &req.organization, true, MAX_SLUG);
    v.text("email", &req.email, true, MAX_EMAIL);
    v.finish()?;
    let auth = &state.auth;
    spend(&auth.login_addresses, b"sign-in", addr).await?;
    let org = match state
        .crm
        .organizations()
        .get_by_slug(&req.organization)
        .await
    {
        Ok(org) => Some(org.id),
        Err(crm_core::Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let account = account_key(&state, org, &req, addr).await?;
    auth.login_failures.check(&account).await?;
    match authenticate(&state, org, &req).await {
        Ok(principal) => {
            auth.login_failures.reset(&account).await;
            Ok(Json(tokens(&state, &principal).await?))
        }
        Err(e) => {
            if matches!(e, ApiError::Core(crm_core::Error::Unauthenticated)) {
                auth.login_failures.hit(account).await;
                #[cfg(feature = "metrics")]
                crate::metrics::login_failed("sign_in");
            }
            Err(e)
        }
    }
}

/// The failure counter of one account as tried from one address. The account is the user the
/// database resolves the email to (its own case folding, e.g. of `İ`, decides), so spellings of
/// one email share a counter; an email that names no user is counted by its lowercase form.
async fn account_key(
    state: &ApiState,
    org: Option<OrganizationId>,
    req: &LoginRequest,
    addr: Option<IpNet>,
) -> ApiResult<LimitKey> {
    let addr = addr.map(|a| a.to_string()).unwrap_or_default();
    let user = match org {
        Some(org) => match state
            .crm
            .tenant(&TenantContext::system(org))
            .users()
            .get_by_email(&req.email)
            .await
        {
            Ok(user) => Some((org, user.id)),
            Err(crm_core::Error::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    Ok(match user {
        Some((org, user)) => limit_key(&[
            b"user",
            org.uuid().as_bytes(),
            user.uuid().as_bytes(),
            addr.as_bytes(),
        ]),
        None => limit_key(&[
            b"name",
            req.organization.as_bytes(),
            req.email.trim().to_lowercase().as_bytes(),
            addr.as_bytes(),
        ]),
    })
}

async fn authenticate(
    state: &ApiState,
    org: Option<OrganizationId>,
    req: &LoginRequest,
) -> ApiResult<Principal> {
    // Checking a password is the system's act in the organization: no user is known yet. An
    // unknown organization still pays for a (dummy) hash check, in an organization that cannot
    // exist, so timing does not tell which slugs exist.
    let nowhere = OrganizationId::from_uuid(uuid::Uuid::nil());
    let user = state
        .crm
        .tenant(&TenantContext::system(org.unwrap_or(nowhere)))
        .users()
        .authenticate(&req.email, &req.password)
        .await?;
    let Some(org) = org else {
        return Err(crm_core::Error::Unauthenticated.into());
    };
    // Active organization, current role: the same check every request makes.
    Ok(state.crm.auth().principal(org, user.id).await?)
}

/// Trades a refresh token for a new access and refresh token (rotation).
#[utoipa::path(post, path = "/auth/refresh", tag = tags::AUTH, request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "Unknown, expired, used or revoked refresh token", body = Problem, content_type = "application/problem+json"),
    ))]
async fn refresh(
    State(state): State<ApiState>,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let (principal, next) = state
        .crm
        .auth()
        .rotate_refresh_token_within(
            &req.refresh_token,
            state.auth.config.refresh_ttl,
            state.auth.config.refresh_family_lifetime,
        )
        .await?;
    let (access_token, expires_in) = state.auth.issue(&principal)?;
    Ok(Json(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
        refresh_token: next.token,
        password_change_required: principal.must_change_password,
    }))
}

/// Signs out: revokes the refresh token's whole family. Access tokens already issued stay
/// valid until they expire.
#[utoipa::path(post, path = "/auth/logout", tag = tags::AUTH, request_body = RefreshRequest,
    responses((status = 204, description = "Signed out")))]
async fn logout(
    State(state): State<ApiState>,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<StatusCode> {
    state
        .crm
        .auth()
        .revoke_refresh_token(&req.refresh_token)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user and their organization.
#[utoipa::path(get, path = "/me", tag = tags::AUTH, security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = MeResponse),
        (status = 403, description = "An API key has no user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn me(State(state): State<ApiState>, tenant: Tenant) -> ApiResult<Json<MeResponse>> {
    let user = tenant.users().get(tenant.user_id()?).await?;
    let organization = state
        .crm
        .organizations()
        .get(OrganizationId::from_uuid(
            tenant.context().organization_id().uuid(),
        ))
        .await?;
    Ok(Json(MeResponse { user, organization }))
}
