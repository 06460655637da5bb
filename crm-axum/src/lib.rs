//! # crm-axum
//!
//! The mountable REST API of abetworks CRM: routes, authentication, RFC 9457 problem+json
//! errors and the OpenAPI 3.1 description, on top of [`crm_core`]. No SQL here: everything
//! stored goes through crm-core.
//!
//! ## Usage
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let crm = crm_core::Crm::connect("sqlite://crm.db").await?;
//! let auth = crm_axum::AuthConfig::hs256(b"a secret of at least thirty-two bytes!!")?;
//! // Mount it anywhere: everything lives under /api/v1 (plus Swagger UI at /docs).
//! let app: axum::Router = axum::Router::new().merge(crm_axum::router(crm, auth));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! Besides `/api/v1` and `/docs` the router answers nothing: unknown paths are the host's (its
//! fallback, or axum's empty 404). [`server::app`] is a complete app with a problem+json 404.
//!
//! ## The host's own routes behind CRM credentials
//!
//! [`AuthLayer`] is the API's auth as a tower layer: put it on your own routes and their
//! handlers take the [`Tenant`] extractor — the caller's organization, as the caller. Build the
//! API from the same layer ([`router_with_auth`]) so that both share one principal cache.
//!
//! ```no_run
//! use crm_axum::axum::{Router, routing::get};
//! use crm_axum::{ApiError, AuthConfig, AuthLayer, Tenant};
//!
//! /// The caller's open deals, counted: a host route on top of the CRM.
//! async fn deal_count(tenant: Tenant) -> Result<String, ApiError> {
//!     let deals = tenant.opportunities().list(&Default::default()).await?;
//!     let org = tenant.context().organization_id();
//!     Ok(format!("{org}: {} deals", deals.data.len()))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let crm = crm_axum::crm_core::Crm::connect("sqlite://crm.db").await?;
//! let auth = AuthLayer::new(crm, AuthConfig::hs256(b"a secret of at least thirty-two bytes!!")?);
//! let app: Router = Router::new()
//!     .route("/reports/deals", get(deal_count))
//!     .route_layer(auth.clone()) // 401 problem without a CRM token or API key
//!     .merge(crm_axum::router_with_auth(&auth));
//! # let _ = app;
//! # Ok(()) }
//! ```
//!
//! A handler that takes [`Tenant`] on a route without the layer answers a 500 problem whose
//! detail names the missing layer.
//!
//! ## Conventions
//!
//! - Errors: `application/problem+json` with a stable `type` (`urn:abetworks:crm:problem:…`),
//!   `title`, `status`, `detail` and `errors[]` for field problems — also for malformed JSON,
//!   wrong content types, unknown routes, wrong methods, bad ids and oversized bodies.
//! - Auth: `Authorization: Bearer <JWT>` from `POST /api/v1/auth/login`, or `Bearer crm_key_…`
//!   (API key). Any failure is one 401 with `WWW-Authenticate: Bearer`. Super-admins act in
//!   another organization with `X-Organization-Id: <id>`.
//! - Records: `ETag` is the version; `If-Match` makes writes conditional (412);
//!   `Idempotency-Key` makes creates safe to retry. Another organization's ids answer 404.
//!
//! ## Layout
//!
//! - `lib.rs` — [`router`] and [`openapi`], the assembly;
//! - `auth/` — [`AuthConfig`], JWTs, the [`AuthLayer`] and the [`Tenant`] extractor,
//!   in-process login rate limits and the principal cache;
//! - `error` — [`ApiError`] → [`Problem`], the one conversion of every error;
//! - `extract` — [`Json`], [`Path`], [`Query`] whose rejections are problems;
//! - `idempotency` — `Idempotency-Key` handling on creates; `body` — request bodies read to
//!   their end before a handler runs (keep-alive connections survive early refusals);
//! - `routes/` — handlers: `auth`, `records` (generic over [`crm_core::Entity`]), `verbs`
//!   (convert, close, send…), `pipelines`, `custom_fields`, and the rest;
//! - `server` (feature `server`) — [`server::app`] with probes and tower-http layers, and
//!   [`server::serve`] with graceful shutdown;
//! - `metrics` (feature `metrics`, part of `server`) — Prometheus metrics: [`metrics::Metrics`]
//!   renders `/metrics`, [`metrics::record_requests`] counts requests by route template; the
//!   auth routes count failed sign-ins and rate-limit refusals;
//! - `views` — paging of the simple lists; `openapi` — the description. crm-core's wire types
//!   describe themselves (its feature `openapi`): nothing here restates them.
#![forbid(unsafe_code)]

mod auth;
mod body;
mod error;
mod extract;
mod idempotency;
#[cfg(feature = "metrics")]
pub mod metrics;
mod openapi;
#[cfg(feature = "otel")]
mod otel;
mod routes;
#[cfg(feature = "server")]
pub mod server;
mod state;
mod views;
#[cfg(feature = "webhooks")]
mod webhook_sender;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use crm_core::{Crm, Entity, EntityKind, EntityVisitor};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

#[cfg(feature = "redis")]
pub use auth::REDIS_URL_ENV;
pub use auth::{
    ACT_IN_ORGANIZATION, API_KEY_HEADER, AuthConfig, AuthLayer, Authenticate, Claims, ConfigError,
    IPV6_LIMIT_PREFIX_ENV, REGISTRATION_ENV, TRUSTED_PROXIES_ENV, Tenant,
};
pub use error::{ApiError, ApiResult, InternalError, PROBLEM_JSON, Problem, ProblemField};
pub use extract::{Json, JsonBody, Path, Query};
pub use idempotency::{IDEMPOTENCY_KEY, REPLAYED};
pub use routes::records::{MAX_BATCH, Resource};
#[cfg(feature = "webhooks")]
pub use webhook_sender::{WebhookRootError, WebhookSender};

use routes::records;
use state::ApiState;

/// The axum crate this API is built on, so that a host uses the same version.
pub use axum;
/// The library underneath, so that a host needs no separate dependency to reach it.
pub use crm_core;

/// The prefix of every API route.
pub const API_PREFIX: &str = "/api/v1";

/// Routes that need no credentials, and routes behind the auth layer.
fn parts() -> (OpenApiRouter<ApiState>, OpenApiRouter<ApiState>) {
    let public = routes::auth::public();
    let protected = routes::auth::protected()
        .merge(routes::users::routes())
        .merge(routes::access::routes())
        .merge(routes::organizations::routes())
        .merge(routes::api_keys::routes())
        .merge(routes::webhooks::routes())
        .merge(routes::webhook_subscriptions::routes())
        .merge(routes::pipelines::routes())
        .merge(routes::custom_fields::routes())
        .merge(routes::changes::routes())
        .merge(routes::jobs::routes())
        .merge(routes::search::routes())
        .merge(routes::verbs::routes());
    // The generic record routes of every entity of the registry.
    let protected = EntityKind::ALL
        .iter()
        .fold(protected, |r, kind| r.merge(kind.visit(EntityRoutes)));
    (public, protected)
}

/// Serves and describes one entity of the registry: its generic record routes and their
/// OpenAPI description.
struct EntityRoutes;

impl EntityVisitor for EntityRoutes {
    type Output = OpenApiRouter<ApiState>;
    fn visit<E: Entity>(self) -> Self::Output {
        let mut r = records::routes::<E>();
        openapi::describe_entity::<E>(r.get_openapi_mut());
        r
    }
}

/// The OpenAPI 3.1 description of every route of [`router`] (paths include `/api/v1`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (public, protected) = parts();
    let public_paths = public
        .get_openapi()
        .paths
        .paths
        .keys()
        .map(|p| format!("{API_PREFIX}{p}"))
        .collect();
    let mut doc = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest(API_PREFIX, public.merge(protected))
        .into_openapi();
    openapi::finish(&mut doc, &public_paths);
    doc
}

/// The REST API: everything under `/api/v1`, the OpenAPI document at
/// `/api/v1/openapi.json` and Swagger UI at `/docs`. Mount it with `merge` (or `nest`) into a
/// host router of any state. It sets no fallback of its own outside `/api/v1` (unknown paths
/// there answer problem+json 404), so a host router with its own fallback can merge it.
pub fn router<S: Clone + Send + Sync + 'static>(crm: Crm, auth: AuthConfig) -> Router<S> {
    router_with_auth(&AuthLayer::new(crm, auth))
}

/// [`router`] on an existing [`AuthLayer`]: put that layer on the host's own routes too, and
/// both share one principal cache, one set of login limits and one set of keys.
pub fn router_with_auth<S: Clone + Send + Sync + 'static>(auth: &AuthLayer) -> Router<S> {
    let body_limit = auth.auth.config.body_limit;
    let state = ApiState::from(auth);
    let (public, protected) = parts();
    let (public, _) = public.split_for_parts();
    let (protected, _) = protected.split_for_parts();
    let protected = protected.route_layer(auth.for_api());
    let api = public
        .merge(protected)
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(no_route)
        .with_state(state)
        .layer(middleware::map_response(no_store));
    Router::new()
        .nest(API_PREFIX, api)
        .merge(SwaggerUi::new("/docs").url("/api/v1/openapi.json", openapi()))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(body_limit, body::read_whole))
        .layer(middleware::from_fn(log_internal_errors))
}

/// SHA-256 of the concatenated `parts`, hex encoded: fingerprints and cache keys.
pub(crate) fn sha256_hex(parts: &[&[u8]]) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Every answer of the API holds tokens or an organization's (personal) data: no cache, shared
/// or private, may keep it (a handler that chose its own `Cache-Control` keeps it).
async fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(header::HeaderValue::from_static("no-store"));
    res
}

async fn no_route() -> ApiError {
    ApiError::NoRoute
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Logs the internal error behind a 5xx (kept out of the response body) in the request's span.
async fn log_internal_errors(req: Request, next: Next) -> Response {
    // Cheap clones (a standard method is a tag, a parsed URI shares the request's buffer):
    // no copy of the path on every request for the rare one that fails.
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let res = next.run(req).await;
    if let Some(InternalError(e)) = res.extensions().get::<InternalError>() {
        let path = uri.path();
        tracing::error!(%method, %path, status = res.status().as_u16(), error = %e, "request failed");
    }
    res.into_response()
}
