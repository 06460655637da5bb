//! `webhook-subscriptions`: outbound webhooks managed over HTTP by company admins, confined to
//! their organization, never showing a secret twice. (Delivery itself is tested against a real
//! receiver in crm-core's `tests/behaviour/webhooks.rs`.)

use crm_core::{Crm, Role};
use serde_json::{Value, json};

use crate::helpers::TestApp;

crate::on_both_backends!(
    admins_manage_webhook_subscriptions_of_their_organization,
    control_characters_in_a_url_are_refused_on_create_and_patch
);

async fn admins_manage_webhook_subscriptions_of_their_organization(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let t = admin.access.as_str();
    let made = app
        .post(
            "/api/v1/webhook-subscriptions",
            t,
            json!({
                "url": "https://hooks.example.com/crm",
                "description": "ERP sync",
                "event_types": ["contact.*", "account.deleted"],
            }),
        )
        .await
        .expect(201);
    let secret = made.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{}", made.body);
    let sub = &made.body["subscription"];
    assert_eq!(sub["active"], true);
    assert_eq!(sub["event_types"], json!(["contact.*", "account.deleted"]));
    assert_eq!(sub["organization_id"], json!(admin.org));
    let id = sub["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/webhook-subscriptions/{id}");

    // Listed and read without the secret.
    let list = app
        .get("/api/v1/webhook-subscriptions", t)
        .await
        .expect(200);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    let one = app.get(&path, t).await.expect(200);
    assert_eq!(one.body, list.body["data"][0]);
    for body in [&list.body, &one.body] {
        assert!(!body.to_string().contains("whsec_"), "{body}");
    }

    // Refused: what is not an http(s) URL, unknown event types, fields of our own. (The test
    // harness allows http and private addresses for crm-core's receivers; the default policy's
    // refusals are tested there.)
    let bad = app
        .post(
            "/api/v1/webhook-subscriptions",
            t,
            json!({ "url": "ftp://hooks.example.com/in", "event_types": ["contact.exploded"] }),
        )
        .await
        .problem(422, "validation");
    let fields: Vec<String> = bad.field_errors().into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["url", "event_types"]);
    app.post(
        "/api/v1/webhook-subscriptions",
        t,
        json!({ "url": "https://hooks.example.com", "secret": "mine" }),
    )
    .await
    .problem(422, "validation");

    // Paused and resumed; rotated with an overlap; the log and replays.
    let paused = app
        .patch(&path, t, json!({ "active": false }))
        .await
        .expect(200);
    assert_eq!(paused.body["active"], false);
    let resumed = app
        .patch(&path, t, json!({ "active": true, "event_types": [] }))
        .await
        .expect(200);
    assert_eq!(
        (&resumed.body["active"], &resumed.body["event_types"]),
        (&json!(true), &json!([]))
    );
    let rotated = app
        .post(
            &format!("{path}/rotate-secret"),
            t,
            json!({ "overlap_seconds": 3600 }),
        )
        .await
        .expect(200);
    let new_secret = rotated.body["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert!(rotated.body["subscription"]["rotation_ends_at"].is_string());
    app.post(
        &format!("{path}/rotate-secret"),
        t,
        json!({ "overlap_seconds": -1 }),
    )
    .await
    .problem(422, "validation");
    let log = app.get(&format!("{path}/deliveries"), t).await.expect(200);
    assert_eq!(log.body, json!({ "data": [], "next_cursor": null }));
    app.get(&format!("{path}/deliveries?status=lost"), t)
        .await
        .problem(400, "bad-request");
    let replay = app
        .post(
            &format!("{path}/replay"),
            t,
            json!({ "since": "2026-01-01T00:00:00Z" }),
        )
        .await
        .expect(202);
    assert!(replay.body["cursor"].is_string());
    for body in [
        json!({}),
        json!({ "since": "2026-01-01T00:00:00Z", "after": "1.0" }),
    ] {
        app.post(&format!("{path}/replay"), t, body)
            .await
            .problem(422, "validation");
    }
    app.post(&format!("{path}/replay"), t, json!({ "after": "nonsense" }))
        .await
        .problem(422, "validation");
    let nobody = uuid::Uuid::now_v7();
    app.post(
        &format!("{path}/deliveries/{nobody}/redeliver"),
        t,
        json!({}),
    )
    .await
    .problem(404, "not-found");

    // Not for users below company admin, nor for keys without `all`; another organization's
    // admin finds nothing.
    let user = app.user(&admin, "rep@acme.test", Role::User).await;
    app.get("/api/v1/webhook-subscriptions", &user.access)
        .await
        .problem(403, "forbidden");
    let narrow = app.api_key(t, &["contacts:read", "changes"]).await;
    app.get("/api/v1/webhook-subscriptions", &narrow)
        .await
        .problem(403, "forbidden")
        .code("out_of_scope");
    let all = app.api_key(t, &["all"]).await;
    app.get(&path, &all).await.expect(200);
    let globex = app.register("globex").await;
    let theirs = globex.access.as_str();
    let empty = app
        .get("/api/v1/webhook-subscriptions", theirs)
        .await
        .expect(200);
    assert_eq!(empty.body["data"], json!([]));
    app.get(&path, theirs).await.problem(404, "not-found");
    app.patch(&path, theirs, json!({ "active": false }))
        .await
        .problem(404, "not-found");
    app.post(&format!("{path}/rotate-secret"), theirs, json!({}))
        .await
        .problem(404, "not-found");
    app.get(&format!("{path}/deliveries"), theirs)
        .await
        .problem(404, "not-found");
    app.delete(&path, theirs).await.problem(404, "not-found");

    app.delete(&path, t).await.expect(204);
    app.get(&path, t).await.problem(404, "not-found");
    let gone: Value = app
        .get("/api/v1/webhook-subscriptions", t)
        .await
        .expect(200)
        .body;
    assert_eq!(gone["data"], json!([]));
}

/// A NUL (which PostgreSQL cannot store) or another control character in a webhook URL is a
/// field error of `url`, on create and on patch, never a server error; the URL saved before
/// stays.
async fn control_characters_in_a_url_are_refused_on_create_and_patch(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let t = admin.access.as_str();
    let made = app
        .post(
            "/api/v1/webhook-subscriptions",
            t,
            json!({ "url": "https://hooks.example.com/crm" }),
        )
        .await
        .expect(201);
    let path = format!(
        "/api/v1/webhook-subscriptions/{}",
        made.body["subscription"]["id"].as_str().unwrap()
    );
    for url in [
        "https://hooks.example.com/crm\u{0}",
        "https://hooks.example.com/\u{0}crm",
        "https://hooks.example.com/crm\r\nX-Injected: 1",
    ] {
        let created = app
            .post(
                "/api/v1/webhook-subscriptions",
                t,
                json!({ "url": url, "description": "with a control character" }),
            )
            .await;
        let patched = app.patch(&path, t, json!({ "url": url })).await;
        for res in [created, patched] {
            let res = res.problem(422, "validation");
            assert_eq!(
                res.field_errors(),
                [("url".to_owned(), "invalid_url".to_owned())],
                "{url:?}"
            );
        }
    }
    let list = app
        .get("/api/v1/webhook-subscriptions", t)
        .await
        .expect(200);
    let urls: Vec<&Value> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["url"])
        .collect();
    assert_eq!(urls, [&json!("https://hooks.example.com/crm")]);
}
