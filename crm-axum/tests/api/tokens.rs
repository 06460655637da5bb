//! What tokens and personal data may not outlive: caches (`Cache-Control: no-store`) and the
//! absolute lifetime of a refresh-token family.

use std::time::Duration;

use axum::http::header;
use crm_core::Crm;
use serde_json::json;

use crate::auth::refresh;
use crate::helpers::{TestApp, config};

crate::on_both_backends!(
    token_and_personal_data_responses_are_not_stored,
    a_refresh_family_ends_after_its_absolute_lifetime,
);

async fn token_and_personal_data_responses_are_not_stored(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
    let t = s.access.as_str();
    let id = app
        .create(
            t,
            "contacts",
            json!({ "first_name": "Ada", "email": "ada@example.com" }),
        )
        .await;
    let refreshed = refresh(&app, &s.refresh).await.expect(200);
    for res in [
        refreshed,
        app.get("/api/v1/me", t).await.expect(200),
        app.get("/api/v1/contacts", t).await.expect(200),
        app.get(&format!("/api/v1/contacts/{id}"), t)
            .await
            .expect(200),
        app.get("/api/v1/users", t).await.expect(200),
        app.get("/api/v1/contacts/not-an-id", t).await.expect(400),
    ] {
        assert_eq!(
            res.headers[header::CACHE_CONTROL],
            "no-store",
            "{}",
            res.body
        );
    }
}

async fn a_refresh_family_ends_after_its_absolute_lifetime(crm: Crm) {
    let lifetime = Duration::from_secs(2);
    let app = TestApp::with_config(crm, config().refresh_family_lifetime(lifetime));
    let s = app.register("acme").await;
    // Rotating keeps the family alive only within its lifetime…
    let r = refresh(&app, &s.refresh).await.expect(200);
    let next = r.body["refresh_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(lifetime + Duration::from_millis(200)).await;
    // …after it, even the freshest token of the family is refused: sign in again.
    refresh(&app, &next).await.problem(401, "unauthenticated");
    app.login(&s.slug, "admin@example.com").await;
}
