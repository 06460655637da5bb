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
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crm_core::{Answer, Outgoing, WebhookTransport};

/// Posts webhook deliveries: one HTTP/1.1 connection per delivery, to one of the addresses
/// crm-core checked (never a name resolved again), TLS by rustls with Mozilla's root
/// certificates for `https` (and the roots added with [`Self::trust_root_certificate`]),
/// redirects not followed, everything within the delivery's time limit.
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
#[derive(Debug, Default, Clone)]
pub struct WebhookSender {
    /// The roots added to Mozilla's, DER.
    extra_roots: Vec<CertificateDer<'static>>,
    /// The TLS setup with them; `None` while there are none: the one of the process, with
    /// Mozilla's roots alone.
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// A root certificate that [`WebhookSender::trust_root_certificate`] cannot use.
#[derive(Debug, thiserror::Error)]
#[error("cannot trust this root certificate for webhooks: {0}")]
pub struct WebhookRootError(String);

impl WebhookSender {
    /// Also trusts the certificate authority `der` (a certificate, DER-encoded), besides
    /// Mozilla's roots: for receivers whose certificates a private CA issues (a company's
    /// internal CA, a test CA). A receiver's certificate must still name the URL's host, and
    /// the addresses must still pass the [`crm_core::WebhookPolicy`].
    ///
    /// ```
    /// # fn run(ca_der: Vec<u8>) -> Result<(), crm_axum::WebhookRootError> {
    /// let sender = crm_axum::WebhookSender::default().trust_root_certificate(ca_der)?;
    /// # let _ = sender;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`WebhookRootError`] when `der` is not a certificate rustls can anchor trust in.
    pub fn trust_root_certificate(
        mut self,
        der: impl Into<Vec<u8>>,
    ) -> Result<Self, WebhookRootError> {
        self.extra_roots.push(CertificateDer::from(der.into()));
        let config =
            client_config(&self.extra_roots).map_err(|e| WebhookRootError(e.to_string()))?;
        self.tls = Some(config);
        Ok(self)
    }

    /// The TLS setup deliveries use.
    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        static MOZILLA_ONLY: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
        match &self.tls {
            Some(config) => Ok(config.clone()),
            None => MOZILLA_ONLY
                .get_or_init(|| client_config(&[]).map_err(|e| format!("TLS setup failed: {e}")))
                .clone(),
        }
    }
}

/// A rustls client that trusts Mozilla's roots and `extra_roots`.
fn client_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for root in extra_roots {
        roots.add(root.clone())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

impl WebhookTransport for WebhookSender {
    fn post(&self, out: Outgoing) -> Pin<Box<dyn Future<Output = Answer> + Send + '_>> {
        Box::pin(post(self.tls_config(), out))
    }
}

async fn post(tls_config: Result<Arc<rustls::ClientConfig>, String>, mut out: Outgoing) -> Answer {
    let timeout = out.timeout;
    let exchange = async {
        let stream = connect(&out.addresses).await?;
        let request = request(&mut out)?;
        if out.tls {
            let tls = tls(tls_config?, &out.host, stream).await?;
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

/// The TLS session with `host` over `stream`, its certificate verified against `config`'s roots.
async fn tls(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    stream: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| format!("{host} is not a TLS server name: {e}"))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(
            |e| match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                Some(rustls::Error::InvalidCertificate(why)) => format!(
                    "TLS handshake failed: the receiver's certificate is not trusted ({why})"
                ),
                _ => format!("TLS handshake failed: {e}"),
            },
        )
}
