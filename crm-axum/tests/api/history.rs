//! `GET /{entity}/{id}/history` and `GET /{entity}/{id}?as_of=`: field history over HTTP, with
//! the request id a write came with, and past states.

use crm_core::Crm;
use serde_json::{Value, json};

use crate::helpers::TestApp;

crate::on_both_backends!(history_names_each_change_and_past_states_read_as_they_were);

async fn history_names_each_change_and_past_states_read_as_they_were(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let t = admin.access.as_str();
    let body = json!({ "first_name": "Ada", "last_name": "Byron" });
    let id = app.create(t, "contacts", body).await;
    let one = format!("/api/v1/contacts/{id}");
    let before_patch = app.get(&one, t).await.expect(200).body;
    let request = uuid::Uuid::now_v7().to_string();
    app.send(
        axum::http::Method::PATCH,
        &one,
        Some(t),
        Some(json!({ "last_name": "Lovelace" })),
        &[("x-request-id", &request)],
    )
    .await
    .expect(200);

    // `GET {one}{query}` as `token`.
    let read = |query: &str, token: &str| {
        let (app, path, token) = (&app, format!("{one}{query}"), token.to_owned());
        async move { app.get(&path, &token).await }
    };
    let names = read("/history?field=last_name", t).await.expect(200);
    let changes = names.body["data"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{}", names.body);
    let newest = &changes[0];
    assert_eq!(
        [&newest["before"], &newest["after"], &newest["action"]],
        [&json!("Byron"), &json!("Lovelace"), &json!("updated")]
    );
    assert_eq!(newest["request_id"], request.as_str());
    assert_eq!(newest["actor_kind"], "user");
    assert_eq!(newest["actor_id"], admin.user.to_string());
    assert_eq!(changes[1]["action"], "created");
    assert_eq!(changes[1]["before"], Value::Null);

    // One a page, by cursor: the first, then the other two (last_name and first_name).
    let first = read("/history?limit=1", t).await.expect(200);
    let next = first.body["next_cursor"].as_str().unwrap();
    let rest = read(&format!("/history?cursor={next}"), t)
        .await
        .expect(200);
    assert_eq!(rest.body["data"].as_array().unwrap().len(), 2);

    // As it was before the patch, at the very `updated_at` it had: the old name and version,
    // tagged with that version, so a write conditional on it is refused.
    let at = before_patch["updated_at"].as_str().unwrap();
    let then = read(&format!("?as_of={}", at.replace('+', "%2B")), t).await;
    assert_eq!(then.body, before_patch);
    assert_eq!(then.headers["etag"], "\"1\"");
    app.patch_if_match(&one, t, json!({ "title": "Countess" }), "\"1\"")
        .await
        .expect(412);
    assert_eq!(read("", t).await.body["last_name"], "Lovelace");

    // Bad parameters; a key reads history with the entity's read scope; others' records 404.
    read("/history?field=nope", t)
        .await
        .problem(422, "validation");
    read("?as_of=yesterday", t).await.expect(400);
    read("?as_of=2000-01-01T00:00:00Z", t)
        .await
        .problem(404, "not-found");
    read("/timeline?field=name", t).await.expect(400);
    let reader = app.api_key(t, &["contacts:read"]).await;
    read("/history", &reader).await.expect(200);
    let other = app.register("other").await;
    read("/history", &other.access)
        .await
        .problem(404, "not-found");
}
