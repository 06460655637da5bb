//! [`WebhookSender`]: the HTTP side of outbound webhooks, the [`WebhookTransport`] a
//! [`crm_core::Worker`] posts deliveries through.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use http_body_util::Full;
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crm_core::{Answer, Outgoing, WebhookTransport};

/// Posts webhook deliveries: one HTTP/1.1 connection per delivery, to one of the addresses
/// crm-core checked (never a name resolved again), TLS by rustls with Mozilla's root
/// certificates for `https`, redirects not followed, everything within the delivery's time
/// limit.
///
/// ```no_run
/// # async fn run(crm: crm_core::Crm) -> crm_core::Result<()> {
/// use crm_core::{WebhookSettings, Worker};
///
/// Worker::new(&crm)
///     .webhooks(crm_axum::WebhookSender::default(), WebhookSettings::default())
///     .run_until(async { tokio::signal::ctrl_c().await.ok(); })
///     .await
/// # }
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct WebhookSender;

impl WebhookTransport for WebhookSender {
    fn post(&self, out: Outgoing) -> Pin<Box<dyn Future<Output = Answer> + Send + '_>> {
        Box::pin(post(out))
    }
}

async fn post(mut out: Outgoing) -> Answer {
    let timeout = out.timeout;
    let exchange = async {
        let stream = connect(&out.addresses).await?;
        let request = request(&mut out)?;
        if out.tls {
            let tls = tls(&out.host, stream).await?;
            send(tls, request).await
        } else {
            send(stream, request).await
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(answer) => answer,
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs_f32())),
    }
}

async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut last = String::from("no address to connect to");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}

/// The request; the body is moved out of `out`, not copied.
fn request(out: &mut Outgoing) -> Result<Request<Full<Bytes>>, String> {
    let mut b = Request::post(out.target.as_str())
        .header(hyper::header::HOST, out.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("abetworks-crm-webhooks/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in &out.headers {
        b = b.header(*name, value.as_str());
    }
    b.body(Full::new(Bytes::from(std::mem::take(&mut out.body))))
        .map_err(|e| format!("cannot build the request: {e}"))
}

/// Sends `request` over `io` and answers the status of the response's head.
async fn send<S>(io: S, request: Request<Full<Bytes>>) -> Answer
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    // The connection is driven until the answer's head arrives; then both ends are dropped,
    // which closes it (the body is not read).
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let answer = sender
        .send_request(request)
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("the request failed: {e}"));
    drop(sender);
    driver.abort();
    answer
}

/// The TLS session with `host` over `stream`, its certificate verified against Mozilla's roots.
async fn tls(
    host: &str,
    stream: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let config = CONFIG
        .get_or_init(|| {
            let roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|e| format!("TLS setup failed: {e}"))
        })
        .clone()?;
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| format!("{host} is not a TLS server name: {e}"))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS handshake failed: {e}"))
}
