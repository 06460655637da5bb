//! OpenTelemetry trace export (feature `otel`): every span `tracing` records (one `request` span
//! per HTTP request, with its method, route template, organization and request id) is sent over
//! OTLP/HTTP (protobuf) to the collector the standard variables name.
//!
//! Configured only by the environment, as every OpenTelemetry SDK is:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) switches the export on;
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_EXPORTER_OTLP_COMPRESSION`,
//! `OTEL_SERVICE_NAME` (default `abetworks-crm`) and `OTEL_RESOURCE_ATTRIBUTES` are honoured.
//! The client is hyper without TLS: point it at a collector on the host or the private network
//! (an `http://` endpoint), which forwards wherever it must.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::hyper::HyperClient;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::server::{OTLP_ENDPOINT_ENV as ENDPOINT_ENV, TracingError};

/// The service name when `OTEL_SERVICE_NAME` does not give one.
const SERVICE_NAME: &str = "abetworks-crm";

/// How long one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The tracer provider exporting to the configured collector, or `None` when no endpoint is set.
///
/// # Errors
/// [`TracingError::Otlp`] when the exporter cannot be built (an invalid endpoint) or when called
/// outside a Tokio runtime.
pub(crate) fn provider() -> Result<Option<SdkTracerProvider>, TracingError> {
    if !ENDPOINT_ENV.iter().any(|v| std::env::var_os(v).is_some()) {
        return Ok(None);
    }
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        TracingError::Otlp("start it inside a Tokio runtime (its requests run there)".into())
    })?;
    let client = OnRuntime {
        client: HyperClient::with_default_connector(EXPORT_TIMEOUT, None),
        runtime,
    };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| TracingError::Otlp(e.to_string()))?;
    // The SDK's detectors read OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the name is
    // ours only when they give none.
    let resource = if std::env::var_os("OTEL_SERVICE_NAME").is_some() {
        Resource::builder().build()
    } else {
        Resource::builder().with_service_name(SERVICE_NAME).build()
    };
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    ))
}

/// The `tracing` layer turning spans into OpenTelemetry spans of `provider`.
pub(crate) fn layer<S>(
    provider: &SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("crm"))
}

/// Hyper, driven on the server's Tokio runtime: the SDK's batch processor exports from a thread
/// of its own, where hyper would find no runtime to run on.
#[derive(Debug)]
struct OnRuntime {
    client: HyperClient,
    runtime: tokio::runtime::Handle,
}

impl HttpClient for OnRuntime {
    // The trait is declared with `async_trait`; this is the signature it expands to.
    fn send_bytes<'this, 'fut>(
        &'this self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'fut>>
    where
        'this: 'fut,
        Self: 'fut,
    {
        let client = self.client.clone();
        let sent = self
            .runtime
            .spawn(async move { client.send_bytes(request).await });
        Box::pin(async move { sent.await? })
    }
}
