//! The database going away: 503 with `Retry-After` (never 500), `/readyz` not ready, reads
//! retried on a fresh connection, no acknowledged write lost. PostgreSQL only, on a throwaway
//! cluster of the test's own (never the shared test server).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use crm_core::{Crm, PoolSettings};
use serde_json::json;
use tower::ServiceExt as _;

use crate::helpers::{TestApp, config};
use crate::throwaway::ThrowawayPg;

/// A throwaway cluster and the full app on it; `None` when the PostgreSQL tests are skipped.
async fn app() -> Option<(ThrowawayPg, Crm, TestApp)> {
    crate::harness::postgres_url()?;
    let pg = ThrowawayPg::start()?;
    let crm = Crm::builder()
        .database_url(pg.url())
        .pool(PoolSettings {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(1),
            ..PoolSettings::default()
        })
        .build()
        .await
        .unwrap();
    let router = crm_axum::server::app(
        crm.clone(),
        config(),
        &crm_axum::server::ServerOptions::default(),
    );
    let app = TestApp {
        crm: crm.clone(),
        router,
    };
    Some((pg, crm, app))
}

async fn ready(app: &TestApp) -> StatusCode {
    let req = Request::get("/readyz").body(Body::empty()).unwrap();
    app.router.clone().oneshot(req).await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_is_down_the_api_answers_503_and_readyz_is_not_ready() {
    let Some((pg, _crm, app)) = app().await else {
        return;
    };
    let s = app.register("acme").await;
    assert_eq!(ready(&app).await, StatusCode::OK);

    pg.ctl(&["stop", "-m", "fast"]);
    assert_eq!(ready(&app).await, StatusCode::SERVICE_UNAVAILABLE);
    for res in [
        app.get("/api/v1/accounts", &s.access).await,
        app.post("/api/v1/accounts", &s.access, json!({ "name": "A" }))
            .await,
    ] {
        let res = res.problem(503, "unavailable");
        assert_eq!(res.headers[header::RETRY_AFTER], "2");
    }

    pg.ctl(&["start"]);
    assert_eq!(ready(&app).await, StatusCode::OK);
    app.create(&s.access, "accounts", json!({ "name": "A" }))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_a_restart_is_retried_on_a_fresh_connection() {
    let Some((pg, _crm, app)) = app().await else {
        return;
    };
    let s = app.register("acme").await;
    let id = app
        .create(&s.access, "accounts", json!({ "name": "A" }))
        .await;
    let path = format!("/api/v1/accounts/{id}");
    // Several pooled connections, all idle when the server restarts (and drops them).
    let reads = (0..6).map(|_| app.get(&path, &s.access));
    for r in futures_util::future::join_all(reads).await {
        r.expect(200);
    }
    pg.ctl(&["restart", "-m", "fast"]);
    for _ in 0..6 {
        app.get(&path, &s.access).await.expect(200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_under_load_answers_503_never_500_and_loses_no_acknowledged_write() {
    let Some((pg, _crm, app)) = app().await else {
        return;
    };
    let app = Arc::new(app);
    let s = app.register("acme").await;
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (app, stop, token) = (app.clone(), stop.clone(), s.access.clone());
            tokio::spawn(async move {
                let (mut acked, mut unavailable, mut n) = (Vec::new(), 0, 0);
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let res = app
                        .post(
                            "/api/v1/accounts",
                            &token,
                            json!({ "name": format!("w{w}-{n}") }),
                        )
                        .await;
                    match res.status.as_u16() {
                        201 => acked.push(res.body["id"].as_str().unwrap().to_owned()),
                        503 => {
                            assert!(res.headers.contains_key(header::RETRY_AFTER));
                            unavailable += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        other => panic!("answered {other}: {}", res.body),
                    }
                }
                (acked, unavailable)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let pg = tokio::task::spawn_blocking(move || {
        pg.ctl(&["restart", "-m", "fast"]);
        pg
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    let mut unavailable = 0;
    for w in workers {
        let (a, u) = w.await.unwrap();
        acked.extend(a);
        unavailable += u;
    }
    eprintln!(
        "{} writes acknowledged, {unavailable} answered 503",
        acked.len()
    );
    assert!(acked.len() > 50, "the load ran: {}", acked.len());
    // Every acknowledged write is there.
    for id in &acked {
        app.get(&format!("/api/v1/accounts/{id}"), &s.access)
            .await
            .expect(200);
    }
    drop(pg);
}
