//! A ready-made server around [`crate::router`]: probes, tracing, request ids, CORS,
//! compression, a request timeout, Prometheus metrics, and [`serve`] with graceful shutdown.

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
use crate::metrics::{Metrics, MetricsError, record_requests};

/// The environment variable naming the address of a listener of its own for `/metrics`
/// (`127.0.0.1:9100`); `crm serve --metrics-addr` and the example server read it.
pub const METRICS_ADDR_ENV: &str = "CRM_METRICS_ADDR";

/// Settings of [`app`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Longest a request may take before it answers 503 (default 30 s).
    pub request_timeout: Duration,
    /// CORS: `None` sends no CORS headers (same-origin only, the default); `Some` allows those
    /// origins (`*` for any).
    pub cors_origins: Option<Vec<String>>,
    /// Prometheus metrics: none (the default), or recorded and served at `/metrics` on the app
    /// or on a listener of its own.
    pub metrics: MetricsEndpoint,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            cors_origins: None,
            metrics: MetricsEndpoint::Off,
        }
    }
}

/// Whether [`app`] records metrics, and where `GET /metrics` is answered.
#[derive(Debug, Clone, Default)]
pub enum MetricsEndpoint {
    /// Nothing is recorded and nothing answers `/metrics`.
    #[default]
    Off,
    /// Requests are recorded, and the app answers `/metrics` next to `/healthz` (behind the
    /// [`Metrics`]' token, if it requires one).
    OnApp(Metrics),
    /// Requests are recorded; `/metrics` is answered only by [`metrics_app`] on a listener of
    /// its own (an address only the scraper reaches), not by the app.
    Apart(Metrics),
}

/// The API plus `/healthz` (the process is up), `/readyz` (the database answers) and, as
/// [`ServerOptions::metrics`] says, `/metrics`, wrapped in tracing, `x-request-id` (set when
/// absent, echoed back), request metrics, CORS, gzip and a timeout.
pub fn app(crm: Crm, auth: AuthConfig, options: &ServerOptions) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let probes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(crm.clone());
    let timeout = options.request_timeout;
    let mut app = Router::new()
        .merge(crate::router(crm.clone(), auth))
        .merge(probes)
        // The whole app: unknown paths outside the API are problems too.
        .fallback(crate::no_route)
        .layer(middleware::from_fn(move |req, next| {
            time_limit(timeout, req, next)
        }))
        .layer(middleware::from_fn(record_route));
    match &options.metrics {
        MetricsEndpoint::Off => {}
        MetricsEndpoint::OnApp(metrics) => {
            // Merged after the request metrics: scrapes are not counted as traffic.
            app = app
                .layer(middleware::from_fn(record_requests))
                .merge(metrics.router(crm));
        }
        MetricsEndpoint::Apart(_) => app = app.layer(middleware::from_fn(record_requests)),
    }
    let mut app = app.layer(CompressionLayer::new());
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

impl MetricsEndpoint {
    /// For binaries: the process's [`Metrics`] (installed, with [`Metrics::token_from_env`]),
    /// answered by the app, or, with `addr`, apart on a listener bound to it, returned with its
    /// [`metrics_app`] to pass to [`serve_beside`].
    ///
    /// # Errors
    /// Those of [`Metrics::install`] and [`Metrics::token_from_env`]; [`MetricsError::Bind`]
    /// when `addr` cannot be bound.
    pub async fn serve_at(
        crm: &Crm,
        addr: Option<&str>,
    ) -> Result<(Self, Option<(TcpListener, Router)>), MetricsError> {
        let metrics = Metrics::install()?.token_from_env()?;
        let Some(addr) = addr else {
            return Ok((MetricsEndpoint::OnApp(metrics), None));
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| MetricsError::Bind(addr.to_owned(), e))?;
        // The bound address: a port 0 in `addr` is a free port, said here.
        let bound = listener
            .local_addr()
            .map_err(|e| MetricsError::Bind(addr.to_owned(), e))?;
        tracing::info!("metrics on http://{bound}{}", crate::metrics::METRICS_PATH);
        let app = metrics_app(crm.clone(), &metrics);
        Ok((MetricsEndpoint::Apart(metrics), Some((listener, app))))
    }
}

/// The app of a listener of its own for `/metrics` ([`MetricsEndpoint::Apart`]): `GET /metrics`
/// of `crm`, and a problem+json 404 for anything else. Serve it beside the main app with
/// [`serve_beside`].
pub fn metrics_app(crm: Crm, metrics: &Metrics) -> Router {
    metrics.router(crm).fallback(crate::no_route)
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

/// The variables that switch the OpenTelemetry trace export on (feature `otel`); on a build
/// without the feature, [`init_tracing`] warns at start that they are set and ignored.
pub const OTLP_ENDPOINT_ENV: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// Why [`init_tracing`] could not install what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TracingError {
    /// The OpenTelemetry exporter cannot be built (feature `otel`, with an OTLP endpoint set).
    #[error("cannot export traces over OTLP: {0}")]
    Otlp(String),
}

/// What [`init_tracing`] installed that must be shut down: keep it until the process ends.
/// Dropping it sends the spans not yet exported (feature `otel`); otherwise it does nothing.
#[derive(Debug)]
#[must_use = "dropping it ends the trace export"]
pub struct Tracing {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Tracing {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider.take() {
            // The last export runs on the Tokio runtime while this thread waits for it: on a
            // worker of a multi-thread runtime, hand the worker's other tasks over first.
            let multi_thread = tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
            let shutdown = || provider.shutdown();
            let done = if multi_thread {
                tokio::task::block_in_place(shutdown)
            } else {
                shutdown()
            };
            if let Err(e) = done {
                eprintln!("exporting the last traces failed: {e}");
            }
        }
    }
}

/// Installs the process's log subscriber: `format`, filtered by `RUST_LOG` (default `info`).
/// For binaries (the CLI, the example server); a host application installs its own.
///
/// With the feature `otel`, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the same spans are also
/// exported over OTLP/HTTP (protobuf); call it inside the Tokio runtime then.
///
/// # Errors
/// [`TracingError::Otlp`] when the export is asked for but cannot be set up.
///
/// # Panics
/// When a global subscriber is installed already.
pub fn init_tracing(format: LogFormat) -> Result<Tracing, TracingError> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let lines = match format {
        // Colours only for a terminal: escape codes in a log file are noise, and cost a
        // formatting pass per line.
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let subscriber = tracing_subscriber::registry().with(filter).with(lines);
    #[cfg(feature = "otel")]
    {
        let provider = crate::otel::provider()?;
        subscriber
            .with(provider.as_ref().map(crate::otel::layer))
            .init();
        Ok(Tracing { provider })
    }
    #[cfg(not(feature = "otel"))]
    {
        subscriber.init();
        // Said at start, not discovered when no trace ever arrives.
        if let Some(var) = OTLP_ENDPOINT_ENV
            .iter()
            .find(|v| std::env::var_os(v).is_some())
        {
            tracing::warn!(
                "{var} is set, but this build has no OpenTelemetry export (cargo feature `otel`): traces are not exported"
            );
        }
        Ok(Tracing {})
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

/// [`serve`] of `app` on `listener` until `shutdown` completes, and meanwhile, when `beside` is
/// given, another app on another listener (the [`metrics_app`] on its own address); that one
/// stops when the main app has stopped.
///
/// # Errors
/// The listeners' I/O errors.
pub async fn serve_beside(
    listener: TcpListener,
    app: Router,
    beside: Option<(TcpListener, Router)>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let main = serve(listener, app, shutdown);
    let Some((other_listener, other)) = beside else {
        return main.await;
    };
    tokio::select! {
        done = main => done,
        done = serve(other_listener, other, std::future::pending()) => done,
    }
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
