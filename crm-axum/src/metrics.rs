//! Prometheus metrics (feature `metrics`): what an operator graphs and alerts on.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `crm_http_requests_total` | counter | `method`, `route` (the template, `/api/v1/contacts/{id}`; `unmatched` for unknown paths), `status` |
//! | `crm_http_request_duration_seconds` | histogram | `method`, `route` |
//! | `crm_login_failures_total` | counter | `kind`: `sign_in` (wrong credentials at `auth/login`), `password_change` (wrong current password at `me/password`) |
//! | `crm_rate_limited_total` | counter | `kind`: `sign_in_address`, `sign_in_failures`, `sign_up_address`, `webhook_forms` |
//! | `crm_db_pool_connections`, `crm_db_pool_idle_connections`, `crm_db_pool_max_connections` | gauge | `backend` |
//! | `crm_db_pool_pending_acquires` | gauge | `backend` |
//! | `crm_db_pool_acquire_waits_total`, `crm_db_pool_acquire_timeouts_total` | counter | `backend` |
//!
//! No label ever holds tenant data: no organization or user id, no email, no raw path (paths hold
//! ids), only route templates and fixed words. The pool numbers come from
//! [`crm_core::Crm::pool_stats`] and are read when `/metrics` is scraped.
//!
//! The counters go through the [`metrics`] facade, so a host that installs its own recorder
//! receives them too. [`Metrics::install`] installs the Prometheus one:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use crm_axum::axum::{Router, middleware};
//! use crm_axum::metrics::{Metrics, record_requests};
//!
//! let crm = crm_axum::crm_core::Crm::connect("sqlite://crm.db").await?;
//! let auth = crm_axum::AuthConfig::hs256(b"a secret of at least thirty-two bytes!!")?;
//! let metrics = Metrics::install()?.token_from_env()?;
//! let app: Router = Router::new()
//!     .merge(crm_axum::router(crm.clone(), auth))
//!     .layer(middleware::from_fn(record_requests)) // requests by route template
//!     .merge(metrics.router(crm)); // GET /metrics, outside the API (and not counted)
//! # let _ = app;
//! # Ok(()) }
//! ```

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use crm_core::{Backend, Crm, PoolStats};
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::ApiError;

/// Where [`Metrics::router`] answers.
pub const METRICS_PATH: &str = "/metrics";

/// The environment variable [`Metrics::token_from_env`] reads: a bearer token scrapers must send.
pub const METRICS_TOKEN_ENV: &str = "CRM_METRICS_TOKEN";

const HTTP_REQUESTS: &str = "crm_http_requests_total";
const HTTP_DURATION: &str = "crm_http_request_duration_seconds";
const LOGIN_FAILURES: &str = "crm_login_failures_total";
const RATE_LIMITED: &str = "crm_rate_limited_total";
const POOL_CONNECTIONS: &str = "crm_db_pool_connections";
const POOL_IDLE: &str = "crm_db_pool_idle_connections";
const POOL_MAX: &str = "crm_db_pool_max_connections";
const POOL_PENDING: &str = "crm_db_pool_pending_acquires";
const POOL_WAITS: &str = "crm_db_pool_acquire_waits_total";
const POOL_TIMEOUTS: &str = "crm_db_pool_acquire_timeouts_total";

/// Latency buckets, in seconds: 5 ms to the default request timeout.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often recorded histogram samples are folded into their buckets even when nobody scrapes,
/// so that memory stays bounded.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Why [`Metrics`] could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// Another metrics recorder is installed in this process (the host's own): the counters of
    /// this crate reach it, but there is no Prometheus handle to render.
    #[error("cannot install the Prometheus recorder: {0}")]
    Install(String),
    /// [`METRICS_TOKEN_ENV`] is set but empty.
    #[error("{METRICS_TOKEN_ENV} is set but empty")]
    EmptyToken,
    /// The address of the metrics listener cannot be bound.
    #[error("cannot listen for metrics on {0}")]
    Bind(String, #[source] std::io::Error),
}

/// The process's Prometheus recorder and how `/metrics` answers: cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    /// SHA-256 of the bearer token scrapers must send, if one is required.
    token: Option<Arc<str>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Installs the Prometheus recorder as the process's metrics recorder, once: later calls
    /// return the same recorder (a process has one). A background thread folds histogram samples
    /// every few seconds, so that memory stays bounded between scrapes.
    ///
    /// # Errors
    /// [`MetricsError::Install`] when another recorder was installed first.
    pub fn install() -> Result<Metrics, MetricsError> {
        static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
        let handle = HANDLE.get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &LATENCY_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| e.to_string())?;
            describe();
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("crm-metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                })
                .map_err(|e| e.to_string())?;
            Ok(handle)
        });
        Ok(Metrics {
            handle: handle.clone().map_err(MetricsError::Install)?,
            token: None,
        })
    }

    /// Requires `Authorization: Bearer <token>` from scrapers (401 otherwise).
    pub fn require_token(mut self, token: &str) -> Self {
        self.token = Some(crate::sha256_hex(&[token.as_bytes()]).into());
        self
    }

    /// [`Metrics::require_token`] with [`METRICS_TOKEN_ENV`] when it is set; unchanged otherwise.
    ///
    /// # Errors
    /// [`MetricsError::EmptyToken`] when the variable is set but empty.
    pub fn token_from_env(self) -> Result<Self, MetricsError> {
        match std::env::var(METRICS_TOKEN_ENV) {
            Ok(token) if token.trim().is_empty() => Err(MetricsError::EmptyToken),
            Ok(token) => Ok(self.require_token(token.trim())),
            Err(_) => Ok(self),
        }
    }

    /// The Prometheus text exposition of everything recorded, with `crm`'s pool read now.
    pub fn render(&self, crm: &Crm) -> String {
        record_pool(crm.pool_stats());
        self.handle.render()
    }

    /// `GET /metrics` ([`METRICS_PATH`]): [`Metrics::render`] of `crm`, behind the token when one
    /// is required. Merge it into the host's router next to its probes, or serve it alone on an
    /// address of its own.
    pub fn router<S: Clone + Send + Sync + 'static>(&self, crm: Crm) -> Router<S> {
        Router::new()
            .route(METRICS_PATH, get(scrape))
            .with_state((self.clone(), crm))
    }

    /// Whether `headers` carry the required token (always, when none is required).
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        // Digests are compared, so the time taken tells nothing about the token.
        sent.is_some_and(|t| *crate::sha256_hex(&[t.trim().as_bytes()]) == **expected)
    }
}

async fn scrape(State((metrics, crm)): State<(Metrics, Crm)>, headers: HeaderMap) -> Response {
    if !metrics.admits(&headers) {
        return ApiError::Core(crm_core::Error::Unauthenticated).into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        metrics.render(&crm),
    )
        .into_response()
}

/// Middleware recording every request it wraps: a count by method, route template and status,
/// and the latency by method and route template. Add it with
/// `axum::middleware::from_fn(record_requests)` as a layer of the router (not of a single route):
/// the route template is known there. The raw path is never recorded.
pub async fn record_requests(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    res
}

/// The method as a label: the standard ones by name, anything else as `other` (a client chooses
/// the method, and labels must stay few).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts a failed sign-in of `kind` (`sign_in`, `password_change`).
pub(crate) fn login_failed(kind: &'static str) {
    counter!(LOGIN_FAILURES, "kind" => kind).increment(1);
}

/// Counts a request a rate limiter of `kind` refused.
pub(crate) fn rate_limited(kind: &'static str) {
    counter!(RATE_LIMITED, "kind" => kind).increment(1);
}

/// Sets the pool gauges and counters from `stats`.
fn record_pool(stats: PoolStats) {
    let backend = match stats.backend {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    gauge!(POOL_CONNECTIONS, "backend" => backend).set(stats.connections);
    gauge!(POOL_IDLE, "backend" => backend).set(stats.idle);
    gauge!(POOL_MAX, "backend" => backend).set(stats.max_connections);
    if let Some(pending) = stats.pending {
        gauge!(POOL_PENDING, "backend" => backend).set(pending as f64);
    }
    if let Some(waits) = stats.waits {
        counter!(POOL_WAITS, "backend" => backend).absolute(waits);
    }
    if let Some(timeouts) = stats.timeouts {
        counter!(POOL_TIMEOUTS, "backend" => backend).absolute(timeouts);
    }
}

/// The `# HELP` lines.
fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by route template"
    );
    describe_counter!(
        LOGIN_FAILURES,
        "Failed sign-ins (wrong credentials), by kind"
    );
    describe_counter!(RATE_LIMITED, "Requests refused by a rate limit, by kind");
    describe_gauge!(
        POOL_CONNECTIONS,
        "Open database connections, in use or idle"
    );
    describe_gauge!(POOL_IDLE, "Idle database connections");
    describe_gauge!(POOL_MAX, "Most database connections the pool opens");
    describe_gauge!(POOL_PENDING, "Callers waiting for a database connection");
    describe_counter!(POOL_WAITS, "Connection checkouts that had to wait");
    describe_counter!(POOL_TIMEOUTS, "Connection checkouts that timed out waiting");
}
