//! The ready-made server: probes, request ids, CORS, the request time limit, and graceful
//! shutdown on a real socket.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{Res, TestApp, config};

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

/// `crm_axum::server::serve` on a free local port.
struct Server {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(app: axum::Router) -> (std::net::SocketAddr, Server) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(crm_axum::server::serve(listener, app, async {
            let _ = stopped.await;
        }));
        (addr, Server { stop, task })
    }

    /// Starts the graceful shutdown and waits until `serve` returned, without error.
    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn serves_probes_and_the_api_then_shuts_down() {
    let crm = crate::harness::sqlite().await;
    let app = crm_axum::server::app(crm, config(), &crm_axum::server::ServerOptions::default());
    let (addr, server) = Server::start(app).await;

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

    server.stop().await;
}

/// The ready-made app with `options`, driven like the router in the other tests.
fn ready_made(crm: &crm_core::Crm, options: &crm_axum::server::ServerOptions) -> TestApp {
    TestApp {
        crm: crm.clone(),
        router: crm_axum::server::app(crm.clone(), config(), options),
    }
}

#[tokio::test]
async fn cors_allows_the_configured_origins_only() {
    use axum::http::{Method, Request, header};
    let crm = crate::harness::sqlite().await;
    let with_origins = |origins: Option<&[&str]>| {
        ready_made(
            &crm,
            &crm_axum::server::ServerOptions {
                cors_origins: origins.map(|o| o.iter().map(|s| (*s).to_owned()).collect()),
                ..Default::default()
            },
        )
    };
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/v1/contacts")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization, content-type",
            )
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let simple = |origin: &str| {
        Request::get("/healthz")
            .header(header::ORIGIN, origin)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let allowed = |res: &Res| {
        res.headers
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .map(|v| v.to_str().unwrap().to_owned())
    };

    let listed = with_origins(Some(&["https://app.example", "https://admin.example"]));
    let res = listed.raw(preflight("https://app.example")).await;
    assert!(res.status.is_success(), "{res:?}");
    assert_eq!(allowed(&res).as_deref(), Some("https://app.example"));
    let methods = res.headers[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST") || methods == "*", "{methods}");
    let res = listed.raw(simple("https://admin.example")).await;
    assert_eq!(allowed(&res).as_deref(), Some("https://admin.example"));
    for origin in ["https://evil.example", "https://app.example.evil.test"] {
        assert_eq!(
            allowed(&listed.raw(preflight(origin)).await),
            None,
            "{origin}"
        );
        assert_eq!(allowed(&listed.raw(simple(origin)).await), None, "{origin}");
    }

    let any = with_origins(Some(&["*"]));
    let res = any.raw(simple("https://anyone.example")).await;
    assert_eq!(allowed(&res).as_deref(), Some("*"));

    // The default: no CORS headers at all (same origin only).
    let none = with_origins(None);
    assert_eq!(
        allowed(&none.raw(preflight("https://app.example")).await),
        None
    );
    assert_eq!(
        allowed(&none.raw(simple("https://app.example")).await),
        None
    );
}

#[tokio::test]
async fn a_request_over_the_time_limit_answers_503() {
    let crm = crate::harness::sqlite().await;
    let app = ready_made(
        &crm,
        &crm_axum::server::ServerOptions {
            request_timeout: Duration::from_millis(20),
            ..Default::default()
        },
    );
    // A sign-up hashes a password (argon2id, on a blocking thread): far longer than 20 ms. On a
    // loaded machine the test's runtime may wake only once both the timer and the sign-up are
    // done, and the timeout polls the request first: a few attempts, of which one must time out.
    let mut timed_out = None;
    for attempt in 0..5 {
        let started = std::time::Instant::now();
        let res = app
            .raw(crate::helpers::post_from(
                [127, 0, 0, 1],
                "/api/v1/auth/register",
                &serde_json::json!({ "organization_name": format!("Slow {attempt}"), "name": "A",
                    "email": format!("a{attempt}@example.com"), "password": crate::helpers::PASSWORD }),
            ))
            .await;
        if res.status == 503 {
            timed_out = Some((res, started.elapsed()));
            break;
        }
        res.expect(201);
    }
    let (res, elapsed) = timed_out.expect("a sign-up over the time limit answers 503");
    res.problem(503, "timeout");
    assert!(
        elapsed < Duration::from_secs(2),
        "answered when the limit passed, not when the work ended: {elapsed:?}"
    );
    // A quick request within the limit is served.
    let healthz = axum::http::Request::get("/healthz")
        .body(axum::body::Body::empty())
        .unwrap();
    app.raw(healthz).await.expect(200);
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let crm = crate::harness::sqlite().await;
    let started = Arc::new(tokio::sync::Notify::new());
    let finished = Arc::new(AtomicBool::new(false));
    let (in_handler, done) = (started.clone(), finished.clone());
    // The ready-made app plus a slow host route, served by `serve`.
    let app = crm_axum::server::app(crm, config(), &crm_axum::server::ServerOptions::default())
        .route(
            "/slow",
            axum::routing::get(move || {
                let (in_handler, done) = (in_handler.clone(), done.clone());
                async move {
                    in_handler.notify_one();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    done.store(true, Ordering::SeqCst);
                    "finished"
                }
            }),
        );
    let (addr, server) = Server::start(app).await;

    let slow = tokio::spawn(get(addr, "/slow"));
    started.notified().await;
    // Shutdown begins while /slow is still running: `serve` returns only once it has answered
    // (a host's process ends right after, taking unfinished requests with it).
    server.stop().await;
    assert!(
        finished.load(Ordering::SeqCst),
        "serve returned before the in-flight request finished"
    );
    let answer = tokio::time::timeout(Duration::from_secs(5), slow)
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("finished"), "{answer}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no new connections after shutdown"
    );
}
