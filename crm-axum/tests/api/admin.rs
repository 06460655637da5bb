//! Users, organizations (super-admins), API keys and the web-form webhook.

use axum::body::Body;
use axum::http::{Method, Request, header};
use crm_core::{Crm, Role};
use serde_json::json;

use crate::helpers::TestApp;

crate::on_both_backends!(
    users_of_the_organization,
    super_admins_manage_organizations,
    api_keys_post_web_forms,
    web_forms_are_rate_limited_per_key,
);

async fn users_of_the_organization(crm: Crm) {
    let app = TestApp::new(crm);
    let s = app.register("acme").await;
    let t = s.access.as_str();
    let u = app
        .post("/api/v1/users", t, json!({ "email": "bob@example.com", "name": "Bob", "role": "user", "password": crate::helpers::PASSWORD }))
        .await
        .expect(201);
    assert_eq!(u.body["role"], "user");
    assert!(u.body.get("password").is_none() && u.body.get("password_hash").is_none());
    app.post(
        "/api/v1/users",
        t,
        json!({ "email": "BOB@example.com", "name": "Bob", "role": "user" }),
    )
    .await
    .problem(409, "conflict");
    let bob = app.login(&s.slug, "bob@example.com").await;
    assert_eq!(bob.user.to_string(), u.body["id"].as_str().unwrap());
    let l = app.get("/api/v1/users?limit=1", t).await.expect(200);
    assert_eq!(l.body["data"].as_array().unwrap().len(), 1);
    let cursor = l.body["next_cursor"].as_str().unwrap();
    let l2 = app
        .get(&format!("/api/v1/users?limit=1&cursor={cursor}"), t)
        .await
        .expect(200);
    assert_eq!(l2.body["data"][0]["email"], "bob@example.com");
}

async fn super_admins_manage_organizations(crm: Crm) {
    let app = TestApp::new(crm);
    let home = app.register("ops").await;
    let root = app.user(&home, "root@example.com", Role::SuperAdmin).await;
    let r = root.access.as_str();
    let o = app
        .post(
            "/api/v1/organizations",
            r,
            json!({ "name": "Tenant One", "slug": "tenant-one" }),
        )
        .await
        .expect(201);
    assert_eq!(o.body["status"], "active");
    let id = o.body["id"].as_str().unwrap();
    app.post(
        "/api/v1/organizations",
        r,
        json!({ "name": "Dup", "slug": "tenant-one" }),
    )
    .await
    .problem(409, "conflict");
    let l = app
        .get("/api/v1/organizations?limit=100", r)
        .await
        .expect(200);
    assert!(
        l.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == id)
    );
    // Suspend: its admin is refused at once (no cache in tests); resume lets them back.
    let victim = app.register("victim").await;
    let path = format!("/api/v1/organizations/{}", victim.org);
    app.patch(&path, r, json!({ "status": "suspended" }))
        .await
        .expect(200);
    app.get("/api/v1/me", &victim.access)
        .await
        .problem(401, "unauthenticated");
    app.patch(&path, r, json!({ "status": "active" }))
        .await
        .expect(200);
    app.get("/api/v1/me", &victim.access).await.expect(200);
    app.patch(&path, r, json!({ "status": "gone" }))
        .await
        .problem(422, "validation");
    // Acting in another organization: explicit, and only for super-admins.
    let org = victim.org.to_string();
    let act = [("x-organization-id", org.as_str())];
    let c = app
        .send(
            Method::POST,
            "/api/v1/contacts",
            Some(r),
            Some(json!({ "first_name": "Support" })),
            &act,
        )
        .await
        .expect(201);
    assert_eq!(c.body["organization_id"], org.as_str());
    assert_eq!(c.body["created_by"], root.user.to_string());
    let seen = app
        .get("/api/v1/contacts", &victim.access)
        .await
        .expect(200);
    assert_eq!(seen.body["data"][0]["first_name"], "Support");
    app.send(
        Method::GET,
        "/api/v1/contacts",
        Some(&home.access),
        None,
        &act,
    )
    .await
    .problem(403, "forbidden");
    app.send(
        Method::GET,
        "/api/v1/contacts",
        Some(r),
        None,
        &[("x-organization-id", "nope")],
    )
    .await
    .problem(400, "bad-request");
    let ghost = uuid::Uuid::now_v7().to_string();
    app.send(
        Method::GET,
        "/api/v1/contacts",
        Some(r),
        None,
        &[("x-organization-id", ghost.as_str())],
    )
    .await
    .problem(404, "not-found");
    app.patch(
        &format!("/api/v1/organizations/{}", uuid::Uuid::now_v7()),
        r,
        json!({ "status": "active" }),
    )
    .await
    .problem(404, "not-found");
}

async fn api_keys_post_web_forms(crm: Crm) {
    // With the API-key cache on: a revocation through the API must still bite at once.
    let app = TestApp::with_config(
        crm,
        crate::helpers::config().principal_cache_ttl(std::time::Duration::from_secs(60)),
    );
    let s = app.register("acme").await;
    let t = s.access.as_str();
    let created = app
        .post("/api/v1/api-keys", t, json!({ "name": "website" }))
        .await
        .expect(201);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let key_id = created.body["api_key"]["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("crm_key_"));
    // The secret shows once, in `key`; the key itself and the list never show any of it.
    crate::harness::assert_no_api_key_secret(&created.body["api_key"].to_string(), &key);
    let l = app.get("/api/v1/api-keys", t).await.expect(200);
    crate::harness::assert_no_api_key_secret(&l.body.to_string(), &key);

    // JSON form post.
    let r = app
        .post(
            "/api/v1/webhooks/forms",
            &key,
            json!({ "name": "Ada Lovelace", "email": "ada@example.com", "utm": "x" }),
        )
        .await
        .expect(201);
    assert_eq!(r.body["data"]["last_name"], "Lovelace");
    assert_eq!(r.body["data"]["source"], "web_form");
    assert_eq!(r.body["data"]["status"], "new");
    assert_eq!(r.body["data"]["created_by"], key_id.as_str());
    assert_eq!(r.body["ignored_fields"], json!(["utm"]));
    // Urlencoded form post, with an Idempotency-Key: replayed once.
    let form = |k: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/v1/webhooks/forms")
            .header(header::AUTHORIZATION, format!("Bearer {k}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("idempotency-key", "form-1")
            .body(Body::from(
                "first_name=Grace&last_name=Hopper&email=grace%40example.com",
            ))
            .unwrap()
    };
    let f1 = app.raw(form(&key)).await.expect(201);
    let f2 = app.raw(form(&key)).await.expect(201);
    assert_eq!(f1.body["data"]["id"], f2.body["data"]["id"]);
    // Leads, not contacts.
    let leads = app.get("/api/v1/leads", t).await.expect(200);
    assert_eq!(leads.body["data"].as_array().unwrap().len(), 2);
    let contacts = app.get("/api/v1/contacts", t).await.expect(200);
    assert_eq!(contacts.body["data"], json!([]));
    // An empty form: 422. A user's token: 403. The key on admin routes: 403.
    app.post("/api/v1/webhooks/forms", &key, json!({ "utm": "x" }))
        .await
        .problem(422, "validation");
    app.post(
        "/api/v1/webhooks/forms",
        t,
        json!({ "email": "a@example.com" }),
    )
    .await
    .problem(403, "forbidden");
    app.get("/api/v1/api-keys", &key)
        .await
        .problem(403, "forbidden");
    app.get("/api/v1/me", &key).await.problem(403, "forbidden");
    app.get("/api/v1/users", &key)
        .await
        .problem(403, "forbidden");
    // A key acts in its own organization only: naming any organization is refused, not ignored.
    let other = app.register("other").await;
    for org in [s.org, other.org] {
        let org = org.to_string();
        app.send(
            Method::POST,
            "/api/v1/webhooks/forms",
            Some(&key),
            Some(json!({ "email": "x@example.com" })),
            &[("x-organization-id", &org)],
        )
        .await
        .problem(403, "forbidden");
    }
    assert_eq!(
        app.get("/api/v1/leads", t).await.expect(200).body["data"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "nothing was created"
    );

    // Revoked: 401.
    app.delete(&format!("/api/v1/api-keys/{key_id}"), t)
        .await
        .expect(204);
    app.raw(form(&key)).await.problem(401, "unauthenticated");
}

async fn web_forms_are_rate_limited_per_key(crm: Crm) {
    let app = TestApp::with_config(crm, crate::helpers::config().webhook_posts_per_minute(2));
    let s = app.register("acme").await;
    let key = |name: &'static str| {
        let app = &app;
        let t = s.access.clone();
        async move {
            app.post("/api/v1/api-keys", &t, json!({ "name": name }))
                .await
                .expect(201)
                .body["key"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (first, second) = (key("first").await, key("second").await);
    let post = |key: String, n: u32| {
        let app = &app;
        async move {
            app.post(
                "/api/v1/webhooks/forms",
                &key,
                json!({ "email": format!("lead{n}@example.com") }),
            )
            .await
        }
    };
    // Two posts a minute per key; the third waits. Another key is not affected.
    post(first.clone(), 1).await.expect(201);
    post(first.clone(), 2).await.expect(201);
    post(first.clone(), 3).await.problem(429, "rate-limited");
    post(second, 4).await.expect(201);
    let leads = app.get("/api/v1/leads", &s.access).await.expect(200);
    assert_eq!(leads.body["data"].as_array().unwrap().len(), 3);
}
