//! The cross-tenant attack matrix: every route with another organization's ids answers 404 and
//! changes nothing.

use axum::http::Method;
use crm_core::Crm;
use serde_json::json;

use crate::helpers::TestApp;

crate::on_both_backends!(another_organizations_ids_answer_404);

async fn another_organizations_ids_answer_404(crm: Crm) {
    let app = TestApp::new(crm);
    // Arrange: the victim's records, user and API key; the attacker is another org's admin.
    let victim = app.register("victim").await;
    let v = victim.access.as_str();
    let account = app.create(v, "accounts", json!({ "name": "Secret" })).await;
    let contact = app
        .create(v, "contacts", json!({ "first_name": "Secret" }))
        .await;
    let key = app
        .post("/api/v1/api-keys", v, json!({ "name": "k" }))
        .await
        .expect(201);
    let key_id = key.body["api_key"]["id"].as_str().unwrap().to_owned();
    let attacker = app.register("attacker").await;
    let a = attacker.access.as_str();

    // Act / Assert: every record route with the victim's ids.
    for (entity, id) in [("accounts", &account), ("contacts", &contact)] {
        let one = format!("/api/v1/{entity}/{id}");
        let cases: Vec<(Method, String, Option<serde_json::Value>)> = vec![
            (Method::GET, one.clone(), None),
            (Method::GET, format!("{one}?include_deleted=true"), None),
            (Method::PATCH, one.clone(), Some(json!({}))),
            (Method::DELETE, one.clone(), None),
            (Method::DELETE, format!("{one}?permanent=true"), None),
            (Method::POST, format!("{one}/restore"), None),
        ];
        for (method, path, body) in cases {
            let res = app.send(method.clone(), &path, Some(a), body, &[]).await;
            assert_eq!(res.status, 404, "{method} {path}: {}", res.body);
            assert!(!res.body.to_string().contains("Secret"));
        }
        // Batch updates of their ids fail per item with 404.
        let r = app
            .post(
                &format!("/api/v1/{entity}/batch"),
                a,
                json!({ "update": [{ "id": id, "patch": {} }] }),
            )
            .await
            .expect(200);
        assert_eq!(r.body["results"][0]["status"], 404);
        // Lists and searches never show them.
        let l = app
            .get(&format!("/api/v1/{entity}?include_deleted=true"), a)
            .await
            .expect(200);
        assert_eq!(l.body["data"], json!([]));
        let l = app
            .post(
                &format!("/api/v1/{entity}/search"),
                a,
                json!({ "filters": [{ "field": "id", "op": "eq", "value": id }] }),
            )
            .await
            .expect(200);
        assert_eq!(l.body["data"], json!([]));
    }
    // Linking to their account: 404 (no such account here).
    app.post(
        "/api/v1/contacts",
        a,
        json!({ "first_name": "X", "account_id": account }),
    )
    .await
    .problem(404, "not-found");
    // Their user and API key.
    app.patch(
        &format!("/api/v1/users/{}", victim.user),
        a,
        json!({ "is_active": false }),
    )
    .await
    .problem(404, "not-found");
    app.delete(&format!("/api/v1/api-keys/{key_id}"), a)
        .await
        .problem(404, "not-found");
    let users = app.get("/api/v1/users", a).await.expect(200);
    assert_eq!(users.body["data"].as_array().unwrap().len(), 1);

    // A token whose `org` claim is changed cannot be forged (see auth tests); and nothing of the
    // victim's changed.
    let r = app
        .get(&format!("/api/v1/accounts/{account}"), v)
        .await
        .expect(200);
    assert_eq!(r.body["version"], 1);
    app.get("/api/v1/me", v).await.expect(200);
    let k = app.get("/api/v1/api-keys", v).await.expect(200);
    assert!(k.body["data"][0]["revoked_at"].is_null());
}
