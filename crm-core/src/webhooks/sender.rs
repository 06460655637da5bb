//! Sends one delivery: a POST over a fresh HTTP/1.1 connection to an address the destination
//! check approved, with TLS for `https`, within a time limit. Redirects are not followed (a
//! 3xx is a failure, as the Standard Webhooks specification advises).

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::destination::Destination;

/// What the receiver answered, or why nothing was answered.
pub(crate) type Answer = Result<StatusCode, String>;

/// Posts `body` with `headers` to `dest` at the first of `addrs` that accepts a connection,
/// all within `timeout`.
pub(crate) async fn post(
    dest: &Destination,
    addrs: &[SocketAddr],
    headers: &[(&'static str, String)],
    body: Bytes,
    timeout: Duration,
) -> Answer {
    let exchange = async {
        let stream = connect(addrs).await?;
        let request = request(dest, headers, body)?;
        if dest.https {
            https(dest, stream, request).await
        } else {
            exchange(stream, request).await
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

fn request(
    dest: &Destination,
    headers: &[(&'static str, String)],
    body: Bytes,
) -> Result<Request<Full<Bytes>>, String> {
    let mut b = Request::post(dest.target.as_str())
        .header(hyper::header::HOST, dest.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("abetworks-crm-webhooks/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in headers {
        b = b.header(*name, value.as_str());
    }
    b.body(Full::new(body))
        .map_err(|e| format!("cannot build the request: {e}"))
}

async fn exchange<S>(io: S, request: Request<Full<Bytes>>) -> Answer
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    // The connection is driven until the answer's head arrives; dropping both ends closes it.
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let answer = sender
        .send_request(request)
        .await
        .map(|r| r.status())
        .map_err(|e| format!("the request failed: {e}"));
    drop(sender);
    driver.abort();
    answer
}

#[cfg(feature = "tls")]
async fn https(dest: &Destination, stream: TcpStream, request: Request<Full<Bytes>>) -> Answer {
    use std::sync::{Arc, OnceLock};

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
    let name = rustls::pki_types::ServerName::try_from(dest.host.clone())
        .map_err(|e| format!("{} is not a TLS server name: {e}", dest.host))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    exchange(tls, request).await
}

#[cfg(not(feature = "tls"))]
async fn https(_: &Destination, _: TcpStream, _: Request<Full<Bytes>>) -> Answer {
    Err("https webhooks need crm-core's `tls` feature, which this build lacks".into())
}
