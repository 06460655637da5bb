//! The organization's settings: pipelines, custom field definitions, users' roles and
//! activation.

use crm_core::{Crm, Role};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_uuid};

crate::on_both_backends!(
    pipelines_list_create_read_and_summarize,
    custom_field_definitions_for_admins,
    users_change_role_and_activation,
);

fn stages() -> Value {
    json!([
        { "name": "Talk", "probability": 20, "kind": "open" },
        { "name": "Signed", "probability": 100, "kind": "won" },
        { "name": "Gone", "probability": 0, "kind": "lost" },
    ])
}

async fn pipelines_list_create_read_and_summarize(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let a = admin.access.as_str();
    let user = app.user(&admin, "u@example.com", Role::User).await;
    let u = user.access.as_str();

    // Every organization starts with its default pipeline; users read it.
    let l = app.get("/api/v1/pipelines", u).await.expect(200);
    assert_eq!(l.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(l.body["data"][0]["is_default"], true);
    assert_eq!(l.body["next_cursor"], Value::Null);

    // Company admins create pipelines; users may not; bad bodies are 422.
    let new = json!({ "name": "Renewals", "stages": stages() });
    app.post("/api/v1/pipelines", u, new.clone())
        .await
        .problem(403, "forbidden");
    app.post(
        "/api/v1/pipelines",
        a,
        json!({ "name": "No won", "stages": [{ "name": "A", "probability": 1, "kind": "open" }] }),
    )
    .await
    .problem(422, "validation");
    app.post(
        "/api/v1/pipelines",
        a,
        json!({ "name": "X", "stages": stages(), "is_default": true }),
    )
    .await
    .problem(422, "validation");
    let p = app.post("/api/v1/pipelines", a, new).await.expect(201);
    let id = expect_uuid(&p.body["id"]);
    assert_eq!(p.body["stages"].as_array().unwrap().len(), 3);
    let signed = p.body["stages"][1]["id"].as_str().unwrap().to_owned();

    let r = app
        .get(&format!("/api/v1/pipelines/{id}"), u)
        .await
        .expect(200);
    assert_eq!(r.body["name"], "Renewals");

    // The summary counts opportunities per stage.
    app.post(
        "/api/v1/opportunities",
        u,
        json!({ "name": "Deal", "pipeline_id": id, "stage_id": signed, "amount_minor": 500, "currency": "EUR" }),
    )
    .await
    .expect(201);
    let s = app
        .get(&format!("/api/v1/pipelines/{id}/summary"), u)
        .await
        .expect(200);
    assert_eq!(s.body["pipeline"]["id"], id.to_string());
    assert_eq!(s.body["stages"][1]["count"], 1);
    assert_eq!(s.body["stages"][1]["amounts"][0]["amount_minor"], 500);
    assert_eq!(s.body["stages"][0]["count"], 0);

    // Another organization's pipeline: 404; a bad id: 400.
    let other = app.register("other").await;
    for path in [
        format!("/api/v1/pipelines/{id}"),
        format!("/api/v1/pipelines/{id}/summary"),
    ] {
        app.get(&path, &other.access)
            .await
            .problem(404, "not-found");
    }
    app.get("/api/v1/pipelines/nope", a)
        .await
        .problem(400, "bad-request");
    // Nor can their opportunities use it.
    app.post(
        "/api/v1/opportunities",
        &other.access,
        json!({ "name": "Deal", "pipeline_id": id }),
    )
    .await
    .problem(422, "validation");
}

async fn custom_field_definitions_for_admins(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let a = admin.access.as_str();
    let user = app.user(&admin, "u@example.com", Role::User).await;
    let u = user.access.as_str();
    let def = json!({ "key": "tier", "label": "Tier", "field_type": "select", "options": ["gold", "silver"] });

    // Users may not define; admins may; twice is 409; bad bodies 422; unknown entities 404.
    app.post("/api/v1/custom-fields/accounts", u, def.clone())
        .await
        .problem(403, "forbidden");
    let d = app
        .post("/api/v1/custom-fields/accounts", a, def.clone())
        .await
        .expect(201);
    assert_eq!(d.body["entity"], "account");
    assert_eq!(d.body["field_type"], "select");
    app.post("/api/v1/custom-fields/accounts", a, def.clone())
        .await
        .problem(409, "conflict");
    app.post(
        "/api/v1/custom-fields/accounts",
        a,
        json!({ "key": "x", "label": "X", "field_type": "colour" }),
    )
    .await
    .problem(422, "validation");
    app.post("/api/v1/custom-fields/widgets", a, def.clone())
        .await
        .problem(404, "no-route");

    // Everyone lists them; records use them.
    let l = app
        .get("/api/v1/custom-fields/accounts", u)
        .await
        .expect(200);
    assert_eq!(l.body["data"][0]["key"], "tier");
    app.post(
        "/api/v1/accounts",
        u,
        json!({ "name": "Globex", "custom_fields": { "tier": "bronze" } }),
    )
    .await
    .problem(422, "validation");
    app.post(
        "/api/v1/accounts",
        u,
        json!({ "name": "Globex", "custom_fields": { "tier": "gold" } }),
    )
    .await
    .expect(201);

    // Patch and archive: admins only.
    let one = "/api/v1/custom-fields/accounts/tier";
    app.patch(one, u, json!({ "label": "Level" }))
        .await
        .problem(403, "forbidden");
    let p = app
        .patch(one, a, json!({ "label": "Level" }))
        .await
        .expect(200);
    assert_eq!(p.body["label"], "Level");
    app.patch(one, a, json!({ "field_type": "text" }))
        .await
        .problem(422, "validation");
    app.delete(one, u).await.problem(403, "forbidden");
    let d = app.delete(one, a).await.expect(200);
    assert_eq!(d.body["archived"], true);
    let l = app
        .get("/api/v1/custom-fields/accounts", a)
        .await
        .expect(200);
    assert_eq!(l.body["data"][0]["archived"], true);

    // Another organization does not see or change them.
    let other = app.register("other").await;
    let o = other.access.as_str();
    let l = app
        .get("/api/v1/custom-fields/accounts", o)
        .await
        .expect(200);
    assert_eq!(l.body["data"], json!([]));
    app.patch(one, o, json!({ "label": "Mine" }))
        .await
        .problem(404, "not-found");
    app.delete(one, o).await.problem(404, "not-found");
    app.delete("/api/v1/custom-fields/leads/nothing", a)
        .await
        .problem(404, "not-found");
}

async fn users_change_role_and_activation(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let a = admin.access.as_str();
    let user = app.user(&admin, "u@example.com", Role::User).await;
    let path = format!("/api/v1/users/{}", user.user);
    let me = format!("/api/v1/users/{}", admin.user);

    // Never above the caller's own role; unknown roles and fields are 422.
    app.patch(&path, a, json!({ "role": "super_admin" }))
        .await
        .problem(403, "forbidden");
    app.patch(&path, a, json!({ "role": "owner" }))
        .await
        .problem(422, "validation");
    app.patch(&path, a, json!({ "password_hash": "x" }))
        .await
        .problem(422, "validation");
    // Plain users change nobody.
    app.patch(&me, &user.access, json!({ "role": "user" }))
        .await
        .problem(403, "forbidden");

    // The last active admin can be neither demoted nor deactivated.
    app.patch(&me, a, json!({ "role": "user" }))
        .await
        .problem(409, "conflict");
    app.patch(&me, a, json!({ "is_active": false }))
        .await
        .problem(409, "conflict");

    // Promote the user: now two admins, so the first may step down.
    let r = app
        .patch(&path, a, json!({ "role": "company_admin" }))
        .await
        .expect(200);
    assert_eq!(r.body["role"], "company_admin");
    app.get("/api/v1/api-keys", &user.access).await.expect(200);
    let r = app
        .patch(&path, a, json!({ "role": "user", "is_active": false }))
        .await
        .expect(200);
    assert_eq!(
        (&r.body["role"], &r.body["is_active"]),
        (&json!("user"), &json!(false))
    );
    app.get("/api/v1/me", &user.access)
        .await
        .problem(401, "unauthenticated");
    let r = app
        .patch(&path, a, json!({ "is_active": true }))
        .await
        .expect(200);
    assert_eq!(r.body["is_active"], true);
    let again = app.login(&admin.slug, "u@example.com").await;
    app.get("/api/v1/me", &again.access).await.expect(200);

    // Another organization's admin: 404, nothing changed.
    let other = app.register("other").await;
    app.patch(&path, &other.access, json!({ "role": "company_admin" }))
        .await
        .problem(404, "not-found");
    let r = app.get("/api/v1/users", a).await.expect(200);
    let u = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == user.user.to_string())
        .unwrap()
        .clone();
    assert_eq!(u["role"], "user");
}
