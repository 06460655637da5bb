//! Authentication: JWT access tokens, the auth layer and the [`Tenant`] extractor.
//!
//! The layer ([`AuthLayer`]) verifies the `Authorization: Bearer` credential once per request
//! — a JWT, or an API key (`crm_key_…`; the web-form post also takes it as `X-API-Key`) —
//! checks that its user is still active in an active organization (cached for
//! [`AuthConfig::principal_cache_ttl`], and with Redis only while the shared cache epoch holds,
//! see `AuthState::epoch`), and puts the resulting [`Tenant`] into the request's
//! extensions. Handlers take [`Tenant`] as an extractor. It only authenticates: what the caller
//! may do (an API key's scopes, a user's permission set and teams) is decided by crm-core's
//! access seam (`crm_core::access`) in the calls a route makes, so a host's own routes get the
//! same answers (403 `out_of_scope` for a key outside its scopes). Every
//! failure answers the same 401 with `WWW-Authenticate: Bearer`; the precise reason is logged at
//! `debug`.
//!
//! A user whose password was set by someone else ([`crm_core::User::must_change_password`],
//! read with their role in the same cached lookup) reaches only `POST me/password` and `GET me`
//! with their access tokens; every other route, a host's own included, answers 403
//! `password_change_required` until they change it. API keys are not affected.
//!
//! A super-admin acts in another organization only explicitly, with the
//! [`ACT_IN_ORGANIZATION`] header (`X-Organization-Id`); anyone else sending it gets 403,
//! API keys included (a key acts in its own organization only, and says so by not sending it).

mod client_addr;
mod config;
mod layer;
pub(crate) mod limits;
#[cfg(feature = "redis")]
mod shared;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use crm_core::auth::ApiKeyAccess;
use crm_core::{Actor, Crm, OrganizationId, Principal, Role, TenantContext, UserId};
use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub(crate) use client_addr::{client_addr, limit_network};
#[cfg(feature = "redis")]
pub use config::REDIS_URL_ENV;
pub use config::{
    AuthConfig, ConfigError, IPV6_LIMIT_PREFIX_ENV, REGISTRATION_ENV, TRUSTED_PROXIES_ENV,
};
pub use layer::{AuthLayer, Authenticate};
use limits::{LIMITER_CAPACITY, RateLimiter, TtlCache};

use crate::error::ApiError;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: Uuid,
    /// The organization's id.
    pub org: Uuid,
    /// The user's role when the token was issued (the current role is what counts).
    pub role: Role,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// Not before.
    pub nbf: u64,
    /// Token id.
    pub jti: Uuid,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
}

impl AuthConfig {
    /// Signs an access token for `principal` with this configuration (algorithm, key, `kid`,
    /// issuer, audience, lifetime); returns it and its lifetime in seconds. The API uses it at
    /// login and refresh; operator tools (`crm token issue`) use it to mint tokens for scripts.
    ///
    /// # Errors
    /// [`crm_core::Error::Internal`] when the key cannot sign.
    pub fn issue_access_token(&self, principal: &Principal) -> crm_core::Result<(String, u64)> {
        let now = unix_now();
        let ttl = self.access_ttl.as_secs();
        let claims = Claims {
            sub: principal.user_id.uuid(),
            org: principal.organization_id.uuid(),
            role: principal.role,
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti: Uuid::now_v7(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let mut header = Header::new(self.algorithm);
        header.kid.clone_from(&self.kid);
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| crm_core::Error::Internal(format!("signing a token: {e}")))?;
        Ok((token, ttl))
    }
}

/// The shared state of the auth machinery.
#[derive(Debug)]
pub(crate) struct AuthState {
    pub(crate) config: AuthConfig,
    /// What an access token must satisfy, built once from `config` (it holds sets of strings:
    /// building it per request cost a dozen allocations).
    validation: Validation,
    /// Users looked up recently, with the epoch they were read in.
    principals: TtlCache<(Uuid, Uuid), (Epoch, Option<Principal>)>,
    /// API keys verified recently, by the SHA-256 of the key (never the key itself), with the
    /// epoch they were read in.
    api_keys: TtlCache<String, (Epoch, Option<ApiKeyAccess>)>,
    /// The Redis the instances share limits and cache epochs through.
    #[cfg(feature = "redis")]
    store: Option<std::sync::Arc<shared::SharedStore>>,
    /// The shared epoch this instance last saw (0: none yet, or Redis did not answer).
    #[cfg(feature = "redis")]
    seen_epoch: std::sync::atomic::AtomicU64,
    /// Failed sign-ins per (account, client address), with backoff.
    pub(crate) login_failures: RateLimiter,
    /// Sign-in attempts per client address.
    pub(crate) login_addresses: RateLimiter,
    /// Sign-ups per client address.
    pub(crate) signups: RateLimiter,
    pub(crate) webhook_posts: RateLimiter,
    /// Whether the "no client address" warning was logged (once per process).
    pub(crate) warned_no_address: std::sync::atomic::AtomicBool,
}

impl AuthState {
    pub(crate) fn new(config: AuthConfig) -> Self {
        #[cfg(feature = "redis")]
        let store = config.redis_url.as_deref().and_then(|url| {
            // The URL was checked by `AuthConfig::redis_url`.
            shared::SharedStore::open(url)
                .inspect_err(|e| tracing::error!(error = %e, "Redis URL: limits count in process"))
                .ok()
                .map(std::sync::Arc::new)
        });
        let limiter = |limiter: RateLimiter| {
            #[cfg(feature = "redis")]
            let limiter = limiter.shared(store.clone());
            limiter
        };
        // Requests per window and key (by name: the kind in metrics and Redis keys).
        let window = |name, limit, period| {
            limiter(RateLimiter::window(name, limit, period, LIMITER_CAPACITY))
        };
        let (login_window, minute) = (config.login_window, std::time::Duration::from_secs(60));
        Self {
            validation: access_token_validation(&config),
            principals: TtlCache::new(config.principal_cache_ttl),
            api_keys: TtlCache::new(config.principal_cache_ttl),
            login_failures: limiter(RateLimiter::backoff(
                "sign_in_failures",
                config.login_attempts_per_account,
                login_window,
                LIMITER_CAPACITY,
            )),
            login_addresses: window(
                "sign_in_address",
                config.login_attempts_per_address,
                login_window,
            ),
            signups: window("sign_up_address", config.signups_per_address, login_window),
            webhook_posts: window("webhook_forms", config.webhook_posts_per_minute, minute),
            warned_no_address: std::sync::atomic::AtomicBool::new(false),
            #[cfg(feature = "redis")]
            store,
            #[cfg(feature = "redis")]
            seen_epoch: std::sync::atomic::AtomicU64::new(0),
            config,
        }
    }

    /// The cache epoch of this request. Without Redis the caches are this process's alone
    /// ([`Epoch::Local`], entries expire after `principal_cache_ttl`). With Redis it is the
    /// shared epoch, read once per request; when it differs from the one this instance saw last,
    /// another instance changed something, and `crm`'s cached definitions are dropped too. While
    /// Redis does not answer, nothing cached is used or kept ([`Epoch::Unknown`]).
    async fn epoch(&self, crm: &Crm) -> Epoch {
        #[cfg(feature = "redis")]
        if let Some(store) = &self.store {
            use std::sync::atomic::Ordering;
            let current = store.epoch().await;
            let seen = current.unwrap_or(0);
            if self.seen_epoch.swap(seen, Ordering::Relaxed) != seen || current.is_none() {
                crm.forget_cached_definitions();
            }
            return current.map_or(Epoch::Unknown, Epoch::Shared);
        }
        let _ = crm;
        Epoch::Local
    }

    /// After a write that changes what the caches hold (a user's role or state, an API key, a
    /// custom-field definition): with Redis, a new shared epoch, so that no instance uses what
    /// it cached before once the write has returned.
    pub(crate) async fn changed(&self) {
        #[cfg(feature = "redis")]
        if let Some(store) = &self.store {
            store.advance_epoch().await;
        }
    }

    /// Signs an access token for `principal`; returns it and its lifetime in seconds.
    pub(crate) fn issue(&self, principal: &Principal) -> Result<(String, u64), ApiError> {
        Ok(self.config.issue_access_token(principal)?)
    }

    /// Verifies an access token's signature and claims.
    pub(crate) fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        // The key is chosen by `kid`: the current one, or a previous one during a rotation.
        let header = jsonwebtoken::decode_header(token)?;
        let key = match (self.config.kid.as_deref(), header.kid.as_deref()) {
            (Some(current), Some(kid)) if kid == current => &self.config.decoding,
            (None, None) => &self.config.decoding,
            (_, Some(kid)) => self
                .config
                .previous_keys
                .iter()
                .find(|(k, _)| k == kid)
                .map(|(_, key)| key)
                .ok_or(jsonwebtoken::errors::ErrorKind::InvalidToken)?,
            (Some(_), None) => return Err(jsonwebtoken::errors::ErrorKind::InvalidToken.into()),
        };
        jsonwebtoken::decode::<Claims>(token, key, &self.validation).map(|d| d.claims)
    }

    /// The user as they are now, from the cache or one query.
    async fn principal(&self, crm: &Crm, org: Uuid, user: Uuid) -> Result<Principal, ApiError> {
        let epoch = self.epoch(crm).await;
        if let Some(cached) = epoch.fresh(self.principals.get(&(org, user))) {
            return cached.ok_or(ApiError::Core(crm_core::Error::Unauthenticated));
        }
        let found = crm
            .auth()
            .principal(OrganizationId::from_uuid(org), UserId::from_uuid(user))
            .await;
        let found = match found {
            Ok(p) => Some(p),
            Err(crm_core::Error::Unauthenticated) => None,
            Err(e) => return Err(e.into()),
        };
        if epoch.keeps() {
            self.principals.insert((org, user), (epoch, found));
        }
        found.ok_or(ApiError::Core(crm_core::Error::Unauthenticated))
    }

    /// The context and scopes of an API key, from the cache or one query.
    async fn api_key(&self, crm: &Crm, key: &str) -> Result<ApiKeyAccess, ApiError> {
        let digest = crate::sha256_hex(&[key.as_bytes()]);
        let epoch = self.epoch(crm).await;
        if let Some(cached) = epoch.fresh(self.api_keys.get(&digest)) {
            return cached.ok_or(ApiError::Core(crm_core::Error::Unauthenticated));
        }
        let found = match crm.auth().verify_api_key(key).await {
            Ok(access) => Some(access),
            Err(crm_core::Error::Unauthenticated) => None,
            Err(e) => return Err(e.into()),
        };
        if epoch.keeps() {
            self.api_keys.insert(digest, (epoch, found.clone()));
        }
        found.ok_or(ApiError::Core(crm_core::Error::Unauthenticated))
    }

    /// Forgets every cached API key (after a revocation made through this process), on every
    /// instance when they share Redis.
    pub(crate) async fn forget_api_keys(&self) {
        self.api_keys.clear();
        self.changed().await;
    }

    /// Forgets every cached user (after an organization's suspension or resumption made through
    /// this process), on every instance when they share Redis.
    pub(crate) async fn forget_principals(&self) {
        self.principals.clear();
        self.changed().await;
    }

    /// Forgets a user's cached state (after a change made through this process), on every
    /// instance when they share Redis.
    pub(crate) async fn forget(&self, org: Uuid, user: Uuid) {
        self.principals.remove(&(org, user));
        self.changed().await;
    }
}

/// What [`AuthState::verify`] asks of an access token. Exactly the configured algorithm:
/// `alg: none` does not even parse, and a token signed with another algorithm (e.g. HS256 with
/// the RSA public key as secret) is refused.
fn access_token_validation(config: &AuthConfig) -> Validation {
    let mut v = Validation::new(config.algorithm);
    v.leeway = 5;
    v.validate_nbf = true;
    v.set_issuer(&[&config.issuer]);
    v.set_audience(&[&config.audience]);
    v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    v
}

/// The cache epoch a request runs in (see [`AuthState::epoch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Epoch {
    /// No shared store: the caches are this process's, kept for their time to live.
    Local,
    /// The shared epoch read from Redis for this request.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Shared(u64),
    /// Redis is configured but did not answer: nothing cached counts.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Unknown,
}

impl Epoch {
    /// The value of a cache entry if it was filled in this epoch.
    fn fresh<V>(self, entry: Option<(Epoch, V)>) -> Option<V> {
        entry
            .filter(|(filled, _)| self.keeps() && *filled == self)
            .map(|(_, v)| v)
    }

    /// Whether what is read in this epoch may be cached.
    fn keeps(self) -> bool {
        self != Epoch::Unknown
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The services of the caller's organization, as the caller: what the auth layer established.
///
/// As an extractor it clones the tenant that [`AuthLayer`] put into the request. On a route
/// without the layer it answers a 500 problem whose detail names the missing layer: that is a
/// mistake in the app's assembly, not the caller's.
#[derive(Debug, Clone)]
pub struct Tenant(pub crm_core::Tenant);

impl std::ops::Deref for Tenant {
    type Target = crm_core::Tenant;
    fn deref(&self) -> &crm_core::Tenant {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Tenant>().cloned().ok_or_else(|| {
            tracing::error!("Tenant extractor used on a route without crm_axum::AuthLayer");
            ApiError::MissingAuthLayer
        })
    }
}

impl Tenant {
    /// The signed-in user's id; 403 for API keys.
    pub fn user_id(&self) -> Result<UserId, ApiError> {
        match self.context().actor() {
            Actor::User(id) => Ok(id),
            _ => Err(forbidden(
                "users_only",
                "this route is for signed-in users, not API keys",
            )),
        }
    }
}

/// A 403 with a stable `code` (see [`crm_core::Refusal`]).
pub(crate) fn forbidden(code: &'static str, msg: &str) -> ApiError {
    ApiError::Core(crm_core::Error::forbidden(code, msg))
}

/// The header the web-form post also accepts its API key in (`Authorization: Bearer` comes
/// first when both are sent).
pub const API_KEY_HEADER: &str = "x-api-key";

/// The credentials of a request, checked. What the caller may then do (an API key's scopes,
/// a user's permission set) is crm-core's to decide, in the calls the route makes.
async fn authorize(
    state: &AuthLayer,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Result<TenantContext, ApiError> {
    resolve(state, method, uri.path(), headers).await
}

/// The tenant context of a request's credentials.
async fn resolve(
    state: &AuthLayer,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<TenantContext, ApiError> {
    let unauthenticated = || ApiError::Core(crm_core::Error::Unauthenticated);
    let form_key = (state.api && is_forms(method, path))
        .then(|| headers.get(API_KEY_HEADER))
        .flatten();
    let token = match (headers.get(AUTHORIZATION), form_key) {
        (Some(value), _) => value.to_str().ok().and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        }),
        (None, Some(key)) => key
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| k.starts_with("crm_key_")),
        (None, None) => {
            tracing::debug!("no Authorization header");
            return Err(unauthenticated());
        }
    }
    .ok_or_else(|| {
        tracing::debug!("Authorization is not a Bearer credential");
        unauthenticated()
    })?;
    if token.starts_with("crm_key_") {
        let access = state
            .auth
            .api_key(&state.crm, token)
            .await
            .inspect_err(|e| {
                tracing::debug!(error = %e, "API key refused");
            })?;
        // A key belongs to one organization; asking to act in one (even its own) is refused
        // rather than silently ignored.
        if headers.contains_key(ACT_IN_ORGANIZATION) {
            return Err(forbidden(
                "api_key_own_organization",
                "API keys act only in their own organization",
            ));
        }
        return Ok(access.context);
    }
    let claims = state.auth.verify(token).map_err(|e| {
        tracing::debug!(error = %e, "access token refused");
        unauthenticated()
    })?;
    let principal = state
        .auth
        .principal(&state.crm, claims.org, claims.sub)
        .await?;
    if principal.must_change_password && !allowed_before_password_change(method, path, state.api) {
        return Err(forbidden(
            "password_change_required",
            "your password was set by an administrator: change it with POST /api/v1/me/password first",
        ));
    }
    let role = principal.role;
    let user = UserId::from_uuid(claims.sub);
    let Some(target) = headers.get(ACT_IN_ORGANIZATION) else {
        return Ok(TenantContext::user(
            OrganizationId::from_uuid(claims.org),
            user,
            role,
        ));
    };
    // A super-admin acting in another organization: explicit (this header), checked by
    // crm-core, logged, and attributed to them in that organization's event log.
    let target = target
        .to_str()
        .ok()
        .and_then(|t| Uuid::try_parse(t.trim()).ok())
        .ok_or_else(|| {
            ApiError::BadRequest(format!("{ACT_IN_ORGANIZATION} must be an organization id"))
        })?;
    let home = TenantContext::user(OrganizationId::from_uuid(claims.org), user, role);
    let ctx = state
        .crm
        .act_in(&home, OrganizationId::from_uuid(target))
        .await?;
    tracing::info!(super_admin = %user, home = %claims.org, organization = %ctx.organization_id(), "super-admin acting in another organization");
    Ok(ctx)
}

/// Whether the request is the web-form post, which may also carry its API key as
/// [`API_KEY_HEADER`] (an HTML form cannot set `Authorization`).
fn is_forms(method: &Method, path: &str) -> bool {
    let path = path.strip_prefix(crate::API_PREFIX).unwrap_or(path);
    *method == Method::POST && path.trim_end_matches('/') == "/webhooks/forms"
}

/// Whether a user who must change their password may make this request: the change itself
/// (`POST me/password`) and reading who they are (`GET me`), on the API's routes only.
fn allowed_before_password_change(method: &Method, path: &str, api: bool) -> bool {
    let path = path.strip_prefix(crate::API_PREFIX).unwrap_or(path);
    api && matches!(
        (method, path.trim_end_matches('/')),
        (&Method::POST, "/me/password") | (&Method::GET, "/me")
    )
}

/// The request header with which a super-admin acts in another organization.
pub const ACT_IN_ORGANIZATION: &str = "x-organization-id";
