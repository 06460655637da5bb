//! The generic record routes, on accounts and contacts.

use axum::http::{Method, header};
use crm_core::auth::Begin;
use crm_core::{Crm, OrganizationId, Role, TenantContext};
use serde_json::json;

use crate::helpers::{TestApp, expect_uuid};

crate::on_both_backends!(
    crud_with_etags_and_the_trash,
    lists_filter_sort_and_page,
    search_takes_a_json_filter_list,
    creates_are_idempotent,
    mass_assignment_is_refused_per_field,
    batch_creates_and_updates,
    permissions_by_role,
);

async fn crud_with_etags_and_the_trash(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
    let t = s.access.as_str();

    // Create: 201, Location, ETag = version.
    let a = app
        .post(
            "/api/v1/accounts",
            t,
            json!({ "name": "Globex", "employee_count": 10 }),
        )
        .await
        .expect(201);
    let id = expect_uuid(&a.body["id"]);
    assert_eq!(a.headers[header::ETAG], "\"1\"");
    assert_eq!(
        a.headers[header::LOCATION],
        format!("/api/v1/accounts/{id}")
    );
    assert_eq!(a.body["organization_id"], s.org.to_string());
    let path = format!("/api/v1/accounts/{id}");

    // Read.
    let r = app.get(&path, t).await.expect(200);
    assert_eq!(r.body["name"], "Globex");
    assert_eq!(r.headers[header::ETAG], "\"1\"");
    let cached = app
        .send(
            Method::GET,
            &path,
            Some(t),
            None,
            &[("if-none-match", "\"1\"")],
        )
        .await
        .expect(304);
    assert_eq!(cached.headers[header::ETAG], "\"1\"");

    // Patch with a stale If-Match: 412; with the right one: 200 and a new ETag.
    app.patch_if_match(&path, t, json!({ "industry": "Energy" }), "\"7\"")
        .await
        .problem(412, "version-mismatch");
    let p = app
        .send(
            Method::PATCH,
            &path,
            Some(t),
            Some(json!({ "industry": "Energy" })),
            &[("if-match", "\"1\"")],
        )
        .await
        .expect(200);
    assert_eq!(p.headers[header::ETAG], "\"2\"");
    assert_eq!(p.body["industry"], "Energy");
    // Without If-Match: last writer wins; null clears.
    let p = app
        .patch(&path, t, json!({ "industry": null }))
        .await
        .expect(200);
    assert!(p.body["industry"].is_null());

    // Delete with a stale If-Match: 412; then soft delete.
    app.delete_if_match(&path, t, "\"1\"")
        .await
        .problem(412, "version-mismatch");
    app.delete_if_match(&path, t, "\"3\"").await.expect(204);
    app.get(&path, t).await.problem(404, "not-found");
    let trashed = app
        .get(&format!("{path}?include_deleted=true"), t)
        .await
        .expect(200);
    assert_eq!(trashed.body["is_deleted"], true);
    let trash = app
        .get("/api/v1/accounts?include_deleted=only", t)
        .await
        .expect(200);
    assert_eq!(trash.body["data"].as_array().unwrap().len(), 1);

    // Restore, then purge for good.
    let r = app
        .send(Method::POST, &format!("{path}/restore"), Some(t), None, &[])
        .await
        .expect(200);
    assert_eq!(r.body["is_deleted"], false);
    app.delete(&format!("{path}?permanent=true"), t)
        .await
        .expect(204);
    app.get(&format!("{path}?include_deleted=true"), t)
        .await
        .problem(404, "not-found");
}

async fn lists_filter_sort_and_page(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
    let t = s.access.as_str();
    for (first, last, email) in [
        ("Ada", "Lovelace", "ada@example.com"),
        ("Alan", "Turing", "alan@example.org"),
        ("Grace", "Hopper", "grace@example.com"),
    ] {
        app.post(
            "/api/v1/contacts",
            t,
            json!({ "first_name": first, "last_name": last, "email": email }),
        )
        .await
        .expect(201);
    }

    let names = |body: &serde_json::Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["last_name"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = app
        .get("/api/v1/contacts?sort=-last_name", t)
        .await
        .expect(200);
    assert_eq!(names(&r.body), ["Turing", "Lovelace", "Hopper"]);
    assert!(r.body["next_cursor"].is_null());

    let r = app
        .get(
            "/api/v1/contacts?filter[email][contains]=example.com&sort=last_name",
            t,
        )
        .await
        .expect(200);
    assert_eq!(names(&r.body), ["Hopper", "Lovelace"]);
    let r = app
        .get("/api/v1/contacts?filter[first_name]=Alan", t)
        .await
        .expect(200);
    assert_eq!(names(&r.body), ["Turing"]);
    let r = app
        .get(
            "/api/v1/contacts?filter[last_name][in]=Turing,Hopper&sort=last_name",
            t,
        )
        .await
        .expect(200);
    assert_eq!(names(&r.body), ["Hopper", "Turing"]);

    // Pages of two, continued by cursor.
    let p1 = app
        .get("/api/v1/contacts?sort=last_name&limit=2", t)
        .await
        .expect(200);
    assert_eq!(names(&p1.body), ["Hopper", "Lovelace"]);
    let cursor = p1.body["next_cursor"].as_str().unwrap();
    let p2 = app
        .get(
            &format!("/api/v1/contacts?sort=last_name&limit=2&cursor={cursor}"),
            t,
        )
        .await
        .expect(200);
    assert_eq!(names(&p2.body), ["Turing"]);
    assert!(p2.body["next_cursor"].is_null());

    // Bad lists are 422s naming the parameter.
    let r = app
        .get("/api/v1/contacts?filter[nope]=1", t)
        .await
        .problem(422, "validation");
    assert!(!r.field_errors().is_empty());
    app.get("/api/v1/contacts?limit=1000", t)
        .await
        .problem(422, "validation");
    app.get("/api/v1/contacts?bogus=1", t)
        .await
        .problem(422, "validation");
    app.get("/api/v1/contacts?filter[email][like]=x", t)
        .await
        .problem(422, "validation");
}

async fn search_takes_a_json_filter_list(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
    let t = s.access.as_str();
    for (name, n) in [("Small", 5), ("Mid", 50), ("Big", 500)] {
        app.post(
            "/api/v1/accounts",
            t,
            json!({ "name": name, "employee_count": n }),
        )
        .await
        .expect(201);
    }
    let r = app
        .post(
            "/api/v1/accounts/search",
            t,
            json!({
                "filters": [
                    { "field": "employee_count", "op": "gte", "value": 10 },
                    { "field": "name", "op": "ne", "value": "Big" }
                ],
                "sort": { "field": "name", "direction": "asc" },
                "limit": 10
            }),
        )
        .await
        .expect(200);
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["name"], "Mid");
    // A condition tree with between and exists.
    let r = app
        .post(
            "/api/v1/accounts/search",
            t,
            json!({
                "condition": { "or": [
                    { "field": "employee_count", "op": "between", "value": [1, 10] },
                    { "not": { "field": "name", "op": "starts_with", "value": "m" } }
                ]},
                "filters": [{ "field": "employee_count", "op": "exists", "value": true }],
                "sort": { "field": "name", "direction": "asc" }
            }),
        )
        .await
        .expect(200);
    let names: Vec<_> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].clone())
        .collect();
    assert_eq!(names, [json!("Big"), json!("Small")]);
    app.post(
        "/api/v1/accounts/search",
        t,
        json!({ "condition": { "and": [{ "field": "employee_count", "op": "between", "value": 3 }] } }),
    )
    .await
    .problem(422, "validation");
    app.post("/api/v1/accounts/search", t, json!({ "filter": [] }))
        .await
        .problem(422, "validation");
}

async fn creates_are_idempotent(crm: Crm) {
    let app = TestApp::new(crm.clone());
    let s = app.register("acme").await;
    let t = s.access.as_str();
    let create = |body: serde_json::Value, key: &'static str| {
        let app = &app;
        async move {
            app.send(
                Method::POST,
                "/api/v1/accounts",
                Some(t),
                Some(body),
                &[("idempotency-key", key)],
            )
            .await
        }
    };
    let first = create(json!({ "name": "Globex" }), "k1").await.expect(201);
    assert!(!first.headers.contains_key("idempotent-replayed"));
    let again = create(json!({ "name": "Globex" }), "k1").await.expect(201);
    assert_eq!(first.body["id"], again.body["id"]);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.headers[header::ETAG], "\"1\"");
    let list = app.get("/api/v1/accounts", t).await.expect(200);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);

    // Same key, different body: 422.
    create(json!({ "name": "Initech" }), "k1")
        .await
        .problem(422, "idempotency-key-reused");
    // A 4xx is remembered too: the repeat is the stored answer, not a second attempt.
    let refused = create(json!({ "name": "" }), "k2")
        .await
        .problem(422, "validation");
    assert!(!refused.headers.contains_key("idempotent-replayed"));
    let replayed = create(json!({ "name": "" }), "k2")
        .await
        .problem(422, "validation");
    assert_eq!(replayed.headers["idempotent-replayed"], "true");
    assert_eq!(replayed.body, refused.body);

    // A first request of the same caller still running: 409.
    let tenant = crm.tenant(&TenantContext::user(
        OrganizationId::from_uuid(s.org),
        crm_core::UserId::from_uuid(s.user),
        crm_core::Role::CompanyAdmin,
    ));
    let claimed = tenant
        .idempotency()
        .begin(
            "k3",
            "someone else's request",
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(claimed, Begin::Started);
    create(json!({ "name": "Hooli" }), "k3")
        .await
        .problem(409, "idempotency-key-in-progress");

    // Keys are per organization: another org may use "k1" for its own record.
    let other = app.register("other").await;
    let r = app
        .send(
            Method::POST,
            "/api/v1/accounts",
            Some(&other.access),
            Some(json!({ "name": "Globex" })),
            &[("idempotency-key", "k1")],
        )
        .await
        .expect(201);
    assert_ne!(r.body["id"], first.body["id"]);
    assert!(!r.headers.contains_key("idempotent-replayed"));

    // And per caller: another user of the same organization repeating "k1" creates their own
    // record instead of receiving the first caller's.
    let colleague = app.user(&s, "colleague@example.com", Role::User).await;
    let mine = app
        .send(
            Method::POST,
            "/api/v1/accounts",
            Some(&colleague.access),
            Some(json!({ "name": "Globex" })),
            &[("idempotency-key", "k1")],
        )
        .await
        .expect(201);
    assert_ne!(mine.body["id"], first.body["id"]);
    assert!(!mine.headers.contains_key("idempotent-replayed"));
}

async fn mass_assignment_is_refused_per_field(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
    let t = s.access.as_str();
    let other = uuid::Uuid::now_v7();
    let r = app
        .post(
            "/api/v1/contacts",
            t,
            json!({
                "first_name": "Eve",
                "id": other, "organization_id": other, "version": 99,
                "created_by": other, "is_deleted": true, "role": "super_admin"
            }),
        )
        .await
        .problem(422, "validation");
    let mut errors = r.field_errors();
    errors.sort();
    assert_eq!(
        errors,
        [
            ("created_by".into(), "read_only".into()),
            ("id".into(), "read_only".into()),
            ("is_deleted".into(), "read_only".into()),
            ("organization_id".into(), "read_only".into()),
            ("role".into(), "unknown_field".into()),
            ("version".into(), "read_only".into()),
        ]
    );
    // The same on a patch.
    let c = app
        .create(t, "contacts", json!({ "first_name": "Eve" }))
        .await;
    let path = format!("/api/v1/contacts/{c}");
    let r = app
        .patch(
            &path,
            t,
            json!({ "organization_id": other, "updated_at": "2020-01-01T00:00:00Z" }),
        )
        .await
        .problem(422, "validation");
    assert_eq!(r.field_errors().len(), 2);
    // Wrong types name the body; validation names the field.
    app.patch(&path, t, json!({ "first_name": 5 }))
        .await
        .problem(422, "validation");
    let r = app
        .post("/api/v1/contacts", t, json!({ "email": "not an email" }))
        .await
        .problem(422, "validation");
    assert!(r.field_errors().iter().any(|(f, _)| f == "email"));
    // Nothing changed.
    let c = app.get(&path, t).await.expect(200);
    assert_eq!(c.body["organization_id"], s.org.to_string());
    assert_eq!(c.body["version"], 1);
}

async fn batch_creates_and_updates(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
    let t = s.access.as_str();
    let a = app.create(t, "accounts", json!({ "name": "Globex" })).await;
    let r = app
        .post(
            "/api/v1/accounts/batch",
            t,
            json!({
                "create": [{ "name": "Initech" }, { "name": "" }, { "name": "X", "id": a }],
                "update": [
                    { "id": a, "version": 1, "patch": { "industry": "Energy" } },
                    { "id": a, "version": 1, "patch": { "industry": "Oil" } },
                    { "id": uuid::Uuid::now_v7(), "patch": { "industry": "Oil" } }
                ]
            }),
        )
        .await
        .expect(200);
    let statuses: Vec<u64> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 422, 422, 200, 412, 404]);
    let too_many: Vec<_> = (0..101)
        .map(|i| json!({ "name": format!("n{i}") }))
        .collect();
    app.post("/api/v1/accounts/batch", t, json!({ "create": too_many }))
        .await
        .problem(422, "validation");
}

async fn permissions_by_role(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let user = app.user(&admin, "u@example.com", Role::User).await;
    let (a, u) = (admin.access.as_str(), user.access.as_str());

    // Users read, create and update records.
    let c = app
        .create(u, "contacts", json!({ "first_name": "Mine" }))
        .await;
    let mine = format!("/api/v1/contacts/{c}");
    app.patch(&mine, u, json!({ "title": "CTO" }))
        .await
        .expect(200);
    // Users soft-delete what they created; not others' records; never purge.
    let theirs = app
        .create(a, "contacts", json!({ "first_name": "Theirs" }))
        .await;
    let theirs = format!("/api/v1/contacts/{theirs}");
    app.delete(&theirs, u).await.problem(403, "forbidden");
    app.delete(&mine, u).await.expect(204);
    app.delete(&format!("{mine}?permanent=true"), u)
        .await
        .problem(403, "forbidden");
    app.delete(&format!("{mine}?permanent=true"), a)
        .await
        .expect(204);

    // Users, API keys: company admins only; organizations: super-admins only.
    let new_user = json!({ "email": "x@example.com", "name": "X", "role": "user" });
    app.post("/api/v1/users", u, new_user.clone())
        .await
        .problem(403, "forbidden");
    app.post("/api/v1/users", a, new_user).await.expect(201);
    app.post(
        "/api/v1/users",
        a,
        json!({ "email": "y@example.com", "name": "Y", "role": "super_admin" }),
    )
    .await
    .problem(403, "forbidden");
    app.get("/api/v1/users", u).await.expect(200);
    app.patch(
        &format!("/api/v1/users/{}", admin.user),
        u,
        json!({ "is_active": false }),
    )
    .await
    .problem(403, "forbidden");
    app.post("/api/v1/api-keys", u, json!({ "name": "k" }))
        .await
        .problem(403, "forbidden");
    app.get("/api/v1/api-keys", u)
        .await
        .problem(403, "forbidden");
    app.get("/api/v1/api-keys", a).await.expect(200);
    app.get("/api/v1/organizations", a)
        .await
        .problem(403, "forbidden");
    app.post("/api/v1/organizations", a, json!({ "name": "New" }))
        .await
        .problem(403, "forbidden");
}
