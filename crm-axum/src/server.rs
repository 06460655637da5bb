//! A ready-made server around [`crate::router`]: probes, tracing, request ids, CORS,
//! compression, a request timeout, and [`serve`] with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use crm_core::Crm;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::cors::CorsLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::AuthConfig;
use crate::error::ApiError;

/// Settings of [`app`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Longest a request may take before it answers 503 (default 30 s).
    pub request_timeout: Duration,
    /// CORS: `None` sends no CORS headers (same-origin only, the default); `Some` allows those
    /// origins (`*` for any).
    pub cors_origins: Option<Vec<String>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            cors_origins: None,
        }
    }
}

/// The API plus `/healthz` (the process is up) and `/readyz` (the database answers), wrapped in
/// tracing, `x-request-id` (set when absent, echoed back), CORS, gzip and a timeout.
pub fn app(crm: Crm, auth: AuthConfig, options: &ServerOptions) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let probes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(crm.clone());
    let timeout = options.request_timeout;
    let mut app = Router::new()
        .merge(crate::router(crm, auth))
        .merge(probes)
        // The whole app: unknown paths outside the API are problems too.
        .fallback(crate::no_route)
        .layer(middleware::from_fn(move |req, next| {
            time_limit(timeout, req, next)
        }))
        .layer(middleware::from_fn(record_route))
        .layer(CompressionLayer::new());
    if let Some(origins) = &options.cors_origins {
        let cors = if origins.iter().any(|o| o == "*") {
            CorsLayer::permissive()
        } else {
            let list: Vec<_> = origins.iter().filter_map(|o| o.parse().ok()).collect();
            CorsLayer::new()
                .allow_origin(list)
                .allow_methods(tower_http::cors::Any)
                .allow_headers(tower_http::cors::Any)
        };
        app = app.layer(cors);
    }
    app.layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    // The route template, not the path: paths hold ids, never personal data,
                    // but templates group. Filled in once routed (`record_route`), with the
                    // organization once authenticated.
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        route = tracing::field::Empty,
                        org = tracing::field::Empty,
                        request_id = %id,
                    )
                })
                .on_request(())
                .on_response(|res: &Response, latency: Duration, _: &tracing::Span| {
                    tracing::info!(
                        status = res.status().as_u16(),
                        latency_ms = latency.as_secs_f64() * 1e3,
                        "answered"
                    );
                }),
        )
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}

/// Records the matched route template (`/api/v1/contacts/{id}`) on the request's span.
async fn record_route(req: Request, next: Next) -> Response {
    if let Some(route) = req.extensions().get::<axum::extract::MatchedPath>() {
        tracing::Span::current().record("route", route.as_str());
    }
    next.run(req).await
}

/// How log lines are written: text for people (the default), or one JSON object per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the request's span fields (`request_id`, `method`,
    /// `route`, `org`) on every line and `status` and `latency_ms` on the answer's; never
    /// bodies, headers or tokens.
    Json,
}

impl LogFormat {
    /// From `CRM_LOG_FORMAT` (`text` or `json`; text when unset).
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("CRM_LOG_FORMAT").as_deref() {
            Err(_) | Ok("" | "text") => Ok(LogFormat::Text),
            Ok("json") => Ok(LogFormat::Json),
            Ok(other) => Err(format!("CRM_LOG_FORMAT is `text` or `json`, not `{other}`")),
        }
    }
}

/// Installs the process's log subscriber: `format`, filtered by `RUST_LOG` (default `info`).
/// For binaries (the CLI, the example server); a host application installs its own.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

async fn ready(State(crm): State<Crm>) -> Response {
    match crm.organizations().list(None, 1).await {
        Ok(_) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            let mut res = (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
            res.extensions_mut()
                .insert(crate::InternalError(e.to_string()));
            res
        }
    }
}

async fn time_limit(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::TimedOut.into_response(),
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish.
/// Client addresses reach the handlers (login rate limits per address use them).
///
/// # Errors
/// The listener's I/O errors.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Resolves on Ctrl-C or SIGTERM: pass it to [`serve`] for a graceful shutdown.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
