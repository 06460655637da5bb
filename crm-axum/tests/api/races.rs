//! Races between clients over HTTP: concurrent conditional writes of one record, and concurrent
//! first requests with one `Idempotency-Key`. Each request runs on its own connection, so on
//! PostgreSQL they really overlap.

use std::collections::BTreeSet;

use axum::http::Method;
use crm_core::Crm;
use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::TestApp;

crate::on_both_backends!(
    concurrent_if_match_writes_let_exactly_one_through,
    concurrent_first_requests_with_one_key_create_once,
);

/// Clients racing: at least eight, as for every write path.
const CLIENTS: usize = 8;

/// Eight PATCHes of one record at once, all with `If-Match` of the version they read: one is
/// written, every other answers 412, and nothing of theirs is left behind.
async fn concurrent_if_match_writes_let_exactly_one_through(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
    let t = s.access.as_str();
    let id = app.create(t, "accounts", json!({ "name": "A" })).await;
    let path = format!("/api/v1/accounts/{id}");
    let results = join_all(
        (0..CLIENTS)
            .map(|i| app.patch_if_match(&path, t, json!({ "name": format!("W{i}") }), "\"1\"")),
    )
    .await;
    let statuses: Vec<u16> = results.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        CLIENTS - 1,
        "{statuses:?}"
    );
    let winner = results.iter().find(|r| r.status == 200).unwrap();
    let stored = app.get(&path, t).await.expect(200);
    assert_eq!(stored.body["version"], 2);
    assert_eq!(stored.body["name"], winner.body["name"]);
}

/// Eight first requests with one `Idempotency-Key` at once: one record is created; each answer
/// is that creation (201, replayed or not) or 409 while it still runs; a repeat afterwards
/// replays it.
async fn concurrent_first_requests_with_one_key_create_once(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
    let t = s.access.as_str();
    let body = json!({ "name": "Raced" });
    let key = [("idempotency-key", "race-1")];
    let results = join_all((0..CLIENTS).map(|_| {
        app.send(
            Method::POST,
            "/api/v1/accounts",
            Some(t),
            Some(body.clone()),
            &key,
        )
    }))
    .await;
    let mut ids = BTreeSet::new();
    for r in &results {
        match r.status.as_u16() {
            201 => {
                ids.insert(r.body["id"].as_str().unwrap().to_owned());
            }
            409 => {}
            other => panic!("answered {other}: {}", r.body),
        }
    }
    assert_eq!(ids.len(), 1, "one creation, answered alike: {ids:?}");
    let page = app
        .get("/api/v1/accounts?filter[name]=Raced", t)
        .await
        .expect(200);
    assert_eq!(
        page.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        page.body
    );

    let again = app
        .send(Method::POST, "/api/v1/accounts", Some(t), Some(body), &key)
        .await
        .expect(201);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert!(ids.contains(again.body["id"].as_str().unwrap()));
}
