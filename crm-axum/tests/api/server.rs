//! The ready-made server on a real socket: probes, request ids, graceful shutdown.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::config;

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nX-Request-Id: req-42\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn serves_probes_and_the_api_then_shuts_down() {
    let crm = crate::harness::sqlite().await;
    let app = crm_axum::server::app(crm, config(), &crm_axum::server::ServerOptions::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crm_axum::server::serve(listener, app, async {
        let _ = stopped.await;
    }));

    let health = get(addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(
        health.to_ascii_lowercase().contains("x-request-id: req-42"),
        "{health}"
    );
    let ready = get(addr, "/readyz").await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let me = get(addr, "/api/v1/me").await;
    assert!(me.starts_with("HTTP/1.1 401"), "{me}");
    assert!(me.contains("application/problem+json"), "{me}");
    // The ready-made app answers unknown paths outside the API with a problem too.
    let nope = get(addr, "/nope").await;
    assert!(nope.starts_with("HTTP/1.1 404"), "{nope}");
    assert!(
        nope.contains("urn:abetworks:crm:problem:no-route"),
        "{nope}"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
