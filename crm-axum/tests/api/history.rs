//! `GET /{entity}/{id}/history` and `GET /{entity}/{id}?as_of=`: field history over HTTP, with
//! the request id a write came with, and past states.

use crm_core::Crm;
use serde_json::{Value, json};

use crate::helpers::TestApp;

crate::on_both_backends!(history_names_each_change_and_past_states_read_as_they_were);

async fn history_names_each_change_and_past_states_read_as_they_were(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let t = admin.access.as_str();
    let id = app
        .create(
            t,
            "contacts",
            json!({ "first_name": "Ada", "last_name": "Byron" }),
        )
        .await;
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

    let names = app
        .get(&format!("{one}/history?field=last_name"), t)
        .await
        .expect(200);
    let changes = names.body["data"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{}", names.body);
    assert_eq!(
        (
            &changes[0]["before"],
            &changes[0]["after"],
            &changes[0]["action"]
        ),
        (&json!("Byron"), &json!("Lovelace"), &json!("updated"))
    );
    assert_eq!(changes[0]["request_id"], request.as_str());
    assert_eq!(changes[0]["actor_kind"], "user");
    assert_eq!(changes[0]["actor_id"], admin.user.to_string());
    assert_eq!(changes[1]["action"], "created");
    assert_eq!(changes[1]["before"], Value::Null);

    // One a page, by cursor.
    let first = app
        .get(&format!("{one}/history?limit=1"), t)
        .await
        .expect(200);
    let next = first.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("{one}/history?cursor={next}"), t)
        .await
        .expect(200);
    assert_eq!(
        rest.body["data"].as_array().unwrap().len(),
        2,
        "last_name and first_name"
    );

    // As it was before the patch, at the very `updated_at` it had: the old name and version,
    // tagged with that version, so a write conditional on it is refused.
    let at = before_patch["updated_at"]
        .as_str()
        .unwrap()
        .replace('+', "%2B");
    let then = app.get(&format!("{one}?as_of={at}"), t).await.expect(200);
    assert_eq!(then.body, before_patch);
    assert_eq!(then.headers["etag"], "\"1\"");
    app.patch_if_match(&one, t, json!({ "title": "Countess" }), "\"1\"")
        .await
        .expect(412);
    let now = app.get(&one, t).await.expect(200);
    assert_eq!(now.body["last_name"], "Lovelace");

    // Bad parameters; a key reads history with the entity's read scope; others' records 404.
    app.get(&format!("{one}/history?field=nope"), t)
        .await
        .problem(422, "validation");
    app.get(&format!("{one}?as_of=yesterday"), t)
        .await
        .expect(400);
    app.get(&format!("{one}?as_of=2000-01-01T00:00:00Z"), t)
        .await
        .problem(404, "not-found");
    let reader = app.api_key(t, &["contacts:read"]).await;
    app.get(&format!("{one}/history"), &reader)
        .await
        .expect(200);
    let other = app.register("other").await;
    app.get(&format!("{one}/history"), &other.access)
        .await
        .problem(404, "not-found");
}
