//! Keep-alive connections survive requests whose body the server refused without reading it
//! (a bad id, a missing credential): the next request on the connection is answered.

use std::time::Duration;

use crm_core::Crm;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{TestApp, config};

crate::on_both_backends!(a_refused_body_does_not_cost_the_next_request_on_the_connection);

/// Reads one HTTP/1.1 response (status line, headers, `Content-Length` body); its status and
/// whether the server said it closes the connection.
async fn response(r: &mut BufReader<TcpStream>) -> Option<(u16, bool)> {
    let mut status = String::new();
    if r.read_line(&mut status).await.ok()? == 0 {
        return None;
    }
    let code = status.split(' ').nth(1)?.parse().ok()?;
    let (mut length, mut close) = (0usize, false);
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await.ok()?;
        let line = line.trim_end().to_ascii_lowercase();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        if line == "connection: close" {
            close = true;
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).await.ok()?;
    Some((code, close))
}

async fn a_refused_body_does_not_cost_the_next_request_on_the_connection(crm: Crm) {
    let app = TestApp::new(crm.clone());
    let s = app.register("acme").await;
    let router = crm_axum::server::app(crm, config(), &crm_axum::server::ServerOptions::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(crm_axum::server::serve(
        listener,
        router,
        std::future::pending(),
    ));

    // A body of a few KiB: more than one read of the socket, less than the body limit.
    let body = format!(r#"{{"name":"{}"}}"#, "x".repeat(8 * 1024));
    let refused = [
        format!(
            "PATCH /api/v1/accounts/not-an-id HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n",
            s.access
        ),
        format!(
            "DELETE /api/v1/accounts/not-an-id HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n",
            s.access
        ),
        "PATCH /api/v1/accounts/0190c5d2-0000-7000-8000-000000000000 HTTP/1.1\r\nHost: t\r\n"
            .to_owned(),
    ];
    let mut stream = BufReader::new(TcpStream::connect(addr).await.unwrap());
    for round in 0..12 {
        let head = &refused[round % refused.len()];
        let first = format!(
            "{head}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        // The head alone first: a server that refuses it before the body arrives (as happens
        // when the body is still on the wire) must still find where the next request begins.
        stream.get_mut().write_all(first.as_bytes()).await.unwrap();
        let early = tokio::time::timeout(Duration::from_millis(200), stream.get_ref().readable())
            .await
            .is_ok();
        let mut close = false;
        if early {
            let (code, c) = response(&mut stream).await.unwrap();
            assert!(matches!(code, 400 | 401), "round {round}: {code}");
            close = c;
        }
        if close {
            // Allowed: the server said so, and the client opens another connection.
            stream = BufReader::new(TcpStream::connect(addr).await.unwrap());
        } else {
            stream.get_mut().write_all(body.as_bytes()).await.unwrap();
        }
        if !early {
            let (code, _) = tokio::time::timeout(Duration::from_secs(5), response(&mut stream))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: no answer to the refused request"));
            assert!(matches!(code, 400 | 401), "round {round}: {code}");
        }
        stream
            .get_mut()
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let next = tokio::time::timeout(Duration::from_secs(5), response(&mut stream))
            .await
            .unwrap();
        assert_eq!(
            next.map(|r| r.0),
            Some(200),
            "round {round}: the next request was dropped"
        );
    }
    server.abort();
}
