//! Permission sets, teams and record shares over HTTP: company admins manage sets and teams;
//! whoever may change a record shares it.

use axum::http::Method;
use crm_core::{Crm, Role};
use serde_json::{Value, json};

use crate::helpers::{Res, TestApp, expect_uuid};

crate::on_both_backends!(
    permission_sets_are_managed_and_assigned_by_admins,
    teams_and_members_are_managed_by_admins,
    records_are_shared_by_whoever_may_change_them,
);

async fn put(app: &TestApp, path: &str, token: &str, body: Option<Value>) -> Res {
    app.send(Method::PUT, path, Some(token), body, &[]).await
}

/// Contacts: read and write only one's own.
fn own_contacts() -> Value {
    json!({
        "name": "Own contacts",
        "entities": { "contacts": { "read": "own", "write": "own", "delete": "none" } }
    })
}

async fn permission_sets_are_managed_and_assigned_by_admins(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let a = admin.access.as_str();
    let user = app.user(&admin, "u@example.com", Role::User).await;
    let u = user.access.as_str();

    app.post("/api/v1/permission-sets", u, own_contacts())
        .await
        .problem(403, "forbidden")
        .code("admin_only");
    app.get("/api/v1/permission-sets", u)
        .await
        .problem(403, "forbidden");
    let made = app
        .post("/api/v1/permission-sets", a, own_contacts())
        .await
        .expect(201);
    let id = expect_uuid(&made.body["id"]);
    assert_eq!(made.body["entities"]["contacts"]["read"], "own");
    app.post("/api/v1/permission-sets", a, own_contacts())
        .await
        .problem(409, "conflict")
        .code("duplicate");
    let path = format!("/api/v1/permission-sets/{id}");
    let list = app.get("/api/v1/permission-sets", a).await.expect(200);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    app.get(&path, a).await.expect(200);

    let changed = app
        .patch_if_match(&path, a, json!({ "description": "Reps" }), "\"1\"")
        .await
        .expect(200);
    assert_eq!(changed.body["version"], 2);
    app.patch_if_match(&path, a, json!({ "description": "Stale" }), "\"1\"")
        .await
        .problem(412, "version-mismatch");

    // Assigned to a user, it narrows what they see.
    let c = app
        .create(a, "contacts", json!({ "last_name": "Admin's" }))
        .await;
    app.get(&format!("/api/v1/contacts/{c}"), u)
        .await
        .expect(200);
    let body = json!({ "permission_set_id": id });
    let assign = format!("/api/v1/users/{}/permission-set", user.user);
    put(&app, &assign, u, Some(body.clone()))
        .await
        .problem(403, "forbidden");
    let assigned = put(&app, &assign, a, Some(body)).await.expect(200);
    assert_eq!(assigned.body["id"], user.user.to_string());
    app.get(&format!("/api/v1/contacts/{c}"), u)
        .await
        .problem(404, "not-found");
    app.delete(&path, a)
        .await
        .problem(409, "conflict")
        .code("in_use");

    // API keys too.
    let key = app
        .post("/api/v1/api-keys", a, json!({ "name": "k" }))
        .await
        .expect(201);
    let key_id = expect_uuid(&key.body["api_key"]["id"]);
    let key_path = format!("/api/v1/api-keys/{key_id}/permission-set");
    put(&app, &key_path, u, Some(json!({ "permission_set_id": id })))
        .await
        .problem(403, "forbidden");
    put(&app, &key_path, a, Some(json!({ "permission_set_id": id })))
        .await
        .expect(204);

    // Back to built-in access; then the set may go.
    for p in [&assign, &key_path] {
        let r = put(&app, p, a, Some(json!({ "permission_set_id": null }))).await;
        assert!(r.status.is_success(), "{}", r.body);
    }
    app.delete(&path, u).await.problem(403, "forbidden");
    app.delete(&path, a).await.expect(204);
    app.get(&path, a).await.problem(404, "not-found");
}

async fn teams_and_members_are_managed_by_admins(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let a = admin.access.as_str();
    let user = app.user(&admin, "u@example.com", Role::User).await;
    let u = user.access.as_str();

    let new = json!({ "name": "West", "manager_id": admin.user });
    app.post("/api/v1/teams", u, new.clone())
        .await
        .problem(403, "forbidden")
        .code("admin_only");
    app.post(
        "/api/v1/teams",
        a,
        json!({ "name": "X", "manager_id": uuid::Uuid::now_v7() }),
    )
    .await
    .problem(422, "validation");
    let made = app.post("/api/v1/teams", a, new).await.expect(201);
    let id = expect_uuid(&made.body["id"]);
    let path = format!("/api/v1/teams/{id}");
    let list = app.get("/api/v1/teams", u).await.expect(200);
    assert_eq!(list.body["data"][0]["name"], "West");

    app.patch_if_match(&path, u, json!({ "name": "East" }), "\"1\"")
        .await
        .problem(403, "forbidden");
    let changed = app
        .patch_if_match(
            &path,
            a,
            json!({ "name": "East", "manager_id": null }),
            "\"1\"",
        )
        .await
        .expect(200);
    assert_eq!(changed.body["manager_id"], Value::Null);
    app.patch_if_match(&path, a, json!({ "name": "North" }), "\"1\"")
        .await
        .problem(412, "version-mismatch");

    let member = format!("{path}/members/{}", user.user);
    put(&app, &member, u, None).await.problem(403, "forbidden");
    let added = put(&app, &member, a, None).await.expect(200);
    assert_eq!(added.body["user_id"], user.user.to_string());
    app.get(&member, u).await.expect(200);
    let members = app.get(&format!("{path}/members"), u).await.expect(200);
    assert_eq!(members.body["data"].as_array().unwrap().len(), 1);
    app.delete(&member, u).await.problem(403, "forbidden");
    app.delete(&member, a).await.expect(204);
    app.get(&member, a).await.problem(404, "not-found");

    app.delete(&path, u).await.problem(403, "forbidden");
    app.delete(&path, a).await.expect(204);
    app.get(&path, a).await.problem(404, "not-found");
}

async fn records_are_shared_by_whoever_may_change_them(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let a = admin.access.as_str();
    let user = app.user(&admin, "u@example.com", Role::User).await;
    let u = user.access.as_str();
    // The user reads every contact and changes only their own.
    let set = app
        .post(
            "/api/v1/permission-sets",
            a,
            json!({
                "name": "Readers",
                "entities": { "contacts": { "read": "all", "write": "own", "delete": "none" } }
            }),
        )
        .await
        .expect(201);
    put(
        &app,
        &format!("/api/v1/users/{}/permission-set", user.user),
        a,
        Some(json!({ "permission_set_id": set.body["id"] })),
    )
    .await
    .expect(200);
    let c = app
        .create(a, "contacts", json!({ "last_name": "Admin's" }))
        .await;
    let shares = format!("/api/v1/contacts/{c}/shares");
    let to_user = json!({ "grantee_kind": "user", "grantee_id": user.user, "access": "write" });

    // A reader may not share or change it.
    app.post(&shares, u, to_user.clone())
        .await
        .problem(403, "forbidden");
    app.patch(
        &format!("/api/v1/contacts/{c}"),
        u,
        json!({ "first_name": "U" }),
    )
    .await
    .problem(403, "forbidden");

    let made = app.post(&shares, a, to_user).await.expect(200);
    assert_eq!(made.body["access"], "write");
    let list = app.get(&shares, u).await.expect(200);
    assert_eq!(list.body["data"][0]["grantee_id"], user.user.to_string());
    app.patch(
        &format!("/api/v1/contacts/{c}"),
        u,
        json!({ "first_name": "U" }),
    )
    .await
    .expect(200);

    app.post(
        &shares,
        a,
        json!({ "grantee_kind": "team", "grantee_id": uuid::Uuid::now_v7(), "access": "read" }),
    )
    .await
    .problem(422, "validation");
    app.get(&format!("/api/v1/nothings/{c}/shares"), a)
        .await
        .expect(404);

    app.delete(&format!("{shares}/{}", user.user), a)
        .await
        .expect(204);
    app.delete(&format!("{shares}/{}", user.user), a)
        .await
        .problem(404, "not-found");
    app.patch(
        &format!("/api/v1/contacts/{c}"),
        u,
        json!({ "first_name": "V" }),
    )
    .await
    .problem(403, "forbidden");
}
