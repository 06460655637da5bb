//! Malformed input of every kind answers problem+json, never a plain-text rejection.

use axum::body::Body;
use axum::http::{Method, Request, header};
use crm_core::Crm;
use serde_json::json;

use crate::helpers::{TestApp, config};

crate::on_both_backends!(
    malformed_requests_are_problems,
    input_the_database_cannot_take_is_a_422,
    times_outside_the_years_1_to_9999_are_a_422,
);

async fn malformed_requests_are_problems(crm: Crm) {
    let app = TestApp::with_config(crm, config().body_limit(4096));
    let s = app.register("acme").await;
    let t = s.access.as_str();
    let req = |method: Method, path: &str, ct: Option<&str>, body: String| {
        let mut r = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {t}"));
        if let Some(ct) = ct {
            r = r.header(header::CONTENT_TYPE, ct);
        }
        r.body(Body::from(body)).unwrap()
    };

    // Malformed JSON: 400.
    app.raw(req(
        Method::POST,
        "/api/v1/accounts",
        Some("application/json"),
        "{\"name\":".into(),
    ))
    .await
    .problem(400, "bad-request");
    // JSON that is not an object: 422.
    app.post("/api/v1/accounts", t, json!([1, 2]))
        .await
        .problem(422, "validation");
    // Wrong or missing content type: 415.
    app.raw(req(
        Method::POST,
        "/api/v1/accounts",
        Some("text/plain"),
        "{}".into(),
    ))
    .await
    .problem(415, "unsupported-media-type");
    app.raw(req(Method::POST, "/api/v1/auth/login", None, "{}".into()))
        .await
        .problem(415, "unsupported-media-type");
    // Too large: 413.
    let big = json!({ "name": "x".repeat(10_000) }).to_string();
    app.raw(req(
        Method::POST,
        "/api/v1/accounts",
        Some("application/json"),
        big,
    ))
    .await
    .problem(413, "payload-too-large");
    // Unknown route, wrong method: 404 and 405.
    app.get("/api/v1/nope", t).await.problem(404, "no-route");
    // Outside /api/v1 the host's router decides (see mount.rs); the router sets no fallback.
    let r = app.get("/nope", t).await.expect(404);
    assert!(!r.headers.contains_key(header::CONTENT_TYPE), "{r:?}");
    app.send(Method::PUT, "/api/v1/accounts", Some(t), None, &[])
        .await
        .problem(405, "method-not-allowed");
    // A bad id, a bad query, a bad If-Match: 400.
    app.get("/api/v1/accounts/not-a-uuid", t)
        .await
        .problem(400, "bad-request");
    app.get(
        &format!(
            "/api/v1/accounts/{}?include_deleted=maybe",
            uuid::Uuid::now_v7()
        ),
        t,
    )
    .await
    .problem(400, "bad-request");
    let a = app.create(t, "accounts", json!({ "name": "A" })).await;
    app.patch_if_match(&format!("/api/v1/accounts/{a}"), t, json!({}), "yesterday")
        .await
        .problem(400, "bad-request");
    // Unknown fields in auth bodies: 422 naming the field.
    let r = app
        .send(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({ "organization": "x", "email": "e", "password": "p", "admin": true })),
            &[],
        )
        .await
        .problem(422, "validation");
    assert_eq!(
        r.field_errors(),
        [("admin".to_owned(), "unknown_field".to_owned())]
    );
    let r = app
        .send(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({ "organization": "x" })),
            &[],
        )
        .await
        .problem(422, "validation");
    assert_eq!(r.field_errors()[0].1, "required");
}

/// Input that PostgreSQL or SQLite cannot take answers 422 with the field named, never 500.
async fn input_the_database_cannot_take_is_a_422(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
    let t = s.access.as_str();
    let field = |r: &crate::helpers::Res| r.body["errors"][0]["field"].as_str().map(str::to_owned);

    let r = app
        .post("/api/v1/contacts", t, json!({ "last_name": "Nul\u{0}" }))
        .await
        .problem(422, "validation");
    assert_eq!(field(&r).as_deref(), Some("last_name"));
    let r = app
        .post(
            "/api/v1/opportunities",
            t,
            json!({ "name": "Big", "amount_minor": 1_000_000_000_000_001_i64, "currency": "EUR" }),
        )
        .await
        .problem(422, "validation");
    assert_eq!(field(&r).as_deref(), Some("amount_minor"));
    let r = app
        .post(
            "/api/v1/opportunities",
            t,
            json!({ "name": "Late", "expected_close_date": "0000-01-01" }),
        )
        .await
        .problem(422, "validation");
    assert_eq!(field(&r).as_deref(), Some("expected_close_date"));
    let groups: Vec<_> = (0..1_000).map(|_| json!({ "and": [] })).collect();
    let r = app
        .post(
            "/api/v1/accounts/search",
            t,
            json!({ "condition": { "or": groups } }),
        )
        .await
        .problem(422, "validation");
    assert_eq!(field(&r).as_deref(), Some("condition"), "{}", r.body);
    let r = app
        .post(
            "/api/v1/accounts/search",
            t,
            json!({ "filters": [{ "field": "name", "op": "eq", "value": "a\u{0}" }] }),
        )
        .await
        .problem(422, "validation");
    assert_eq!(field(&r).as_deref(), Some("filters[0].value"), "{}", r.body);
}

/// Every time a request passes that reaches a statement is held to the years 1 to 9999 before
/// it does: PostgreSQL refused `-4714-11-24` as out of range (a 500), SQLite compared it as text.
async fn times_outside_the_years_1_to_9999_are_a_422(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
    let t = s.access.as_str();
    let out_of_range = |r: crate::helpers::Res, field: &str| {
        assert_eq!(r.body["errors"][0]["field"], field, "{}", r.body);
        assert_eq!(r.body["errors"][0]["code"], "out_of_range", "{}", r.body);
    };
    let sub = app
        .post(
            "/api/v1/webhook-subscriptions",
            t,
            json!({ "url": "https://hooks.example.com/crm", "event_types": ["account.*"] }),
        )
        .await
        .expect(201);
    let replay = format!(
        "/api/v1/webhook-subscriptions/{}/replay",
        sub.body["subscription"]["id"].as_str().unwrap()
    );
    let a = app.create(t, "accounts", json!({ "name": "A" })).await;
    let one = format!("/api/v1/accounts/{a}");
    app.post(
        "/api/v1/custom-fields/accounts",
        t,
        json!({ "key": "renewal", "label": "Renewal", "field_type": "date" }),
    )
    .await
    .expect(201);
    for ancient in ["-4714-11-24T00:00:00Z", "0000-12-31T23:59:59Z"] {
        let r = app.post(&replay, t, json!({ "since": ancient })).await;
        out_of_range(r.problem(422, "validation"), "since");
        let encoded = ancient.replace('+', "%2B");
        let r = app.get(&format!("{one}?as_of={encoded}"), t).await;
        out_of_range(r.problem(422, "validation"), "as_of");
        let r = app
            .get(
                &format!("/api/v1/accounts?filter[updated_at][gt]={encoded}"),
                t,
            )
            .await;
        r.problem(422, "validation");
        let r = app
            .post(
                "/api/v1/accounts/search",
                t,
                json!({ "filters": [{ "field": "created_at", "op": "lt", "value": ancient }] }),
            )
            .await;
        r.problem(422, "validation");
    }
    let r = app
        .post(
            "/api/v1/accounts/search",
            t,
            json!({ "filters": [{ "field": "custom_fields.renewal", "op": "gt", "value": "-4714-11-24" }] }),
        )
        .await;
    r.problem(422, "validation");
    // The years at both ends are fine.
    for edge in ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
        app.post(&replay, t, json!({ "since": edge }))
            .await
            .expect(202);
        app.get(
            &format!("/api/v1/accounts?filter[updated_at][gt]={edge}"),
            t,
        )
        .await
        .expect(200);
    }
    app.get(&format!("{one}?as_of=9999-12-31T23:59:59Z"), t)
        .await
        .expect(200);
}
