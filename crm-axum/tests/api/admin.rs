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
    api_keys_reach_only_their_scopes,
);

async fn users_of_the_organization(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
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
    // Only a signed-in super-admin: crm-core refuses a company admin (`super_admin_only`).
    let denied = app
        .get("/api/v1/organizations", &home.access)
        .await
        .problem(403, "forbidden");
    assert_eq!(denied.body["code"], "super_admin_only", "{}", denied.body);
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
    let denied = app
        .send(
            Method::GET,
            "/api/v1/contacts",
            Some(&home.access),
            None,
            &act,
        )
        .await
        .problem(403, "forbidden");
    assert_eq!(denied.body["code"], "super_admin_only", "{}", denied.body);
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
    let first = app.api_key(&s.access, &[]).await;
    let second = app.api_key(&s.access, &[]).await;
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

async fn api_keys_reach_only_their_scopes(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
    let t = s.access.as_str();
    let lead = app
        .create(t, "leads", json!({ "last_name": "Known" }))
        .await;
    let make = |name: &'static str, scopes: serde_json::Value| {
        app.post(
            "/api/v1/api-keys",
            t,
            json!({ "name": name, "scopes": scopes }),
        )
    };
    // Unknown scopes: 422 per entry.
    let bad = make("bad", json!(["forms", "leads:admin", "widgets:read"]))
        .await
        .problem(422, "validation");
    let fields: Vec<_> = bad.field_errors().into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["scopes[1]", "scopes[2]"]);
    make("none", json!([])).await.problem(422, "validation");

    // Without scopes a key is for web forms only.
    let forms = app
        .post("/api/v1/api-keys", t, json!({ "name": "website" }))
        .await
        .expect(201);
    assert_eq!(forms.body["api_key"]["scopes"], json!(["forms"]));
    let forms_key = forms.body["key"].as_str().unwrap().to_owned();
    let reader = make("reader", json!(["leads:read"])).await.expect(201);
    let reader_key = reader.body["key"].as_str().unwrap().to_owned();
    let writer = make("writer", json!(["accounts:write"])).await.expect(201);
    let writer_key = writer.body["key"].as_str().unwrap().to_owned();
    let all = make("all", json!(["all"])).await.expect(201);
    let all_key = all.body["key"].as_str().unwrap().to_owned();

    // Listed with their scopes, each with a prefix of its own that starts its key.
    let listed = app.get("/api/v1/api-keys", t).await.expect(200);
    let listed = listed.body["data"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[1]["scopes"], json!(["leads:read"]));
    let prefixes: std::collections::BTreeSet<_> = listed
        .iter()
        .map(|k| k["prefix"].as_str().unwrap())
        .collect();
    assert_eq!(prefixes.len(), 4);
    for (k, key) in listed
        .iter()
        .zip([&forms_key, &reader_key, &writer_key, &all_key])
    {
        assert!(key.starts_with(k["prefix"].as_str().unwrap()));
        assert!(
            !listed
                .iter()
                .any(|l| l.to_string().contains(&key[key.len() - 43..]))
        );
    }

    let out_of_scope = |r: crate::helpers::Res| {
        r.problem(403, "forbidden").code("out_of_scope");
    };
    let leads = "/api/v1/leads";
    let one_lead = format!("/api/v1/leads/{lead}");
    let form = json!({ "email": "ada@example.com" });

    // The form key posts forms, also as X-API-Key, and reads or writes nothing.
    app.send(
        Method::POST,
        "/api/v1/webhooks/forms",
        None,
        Some(form.clone()),
        &[("x-api-key", &forms_key)],
    )
    .await
    .expect(201);
    out_of_scope(app.get(leads, &forms_key).await);
    out_of_scope(app.get(&one_lead, &forms_key).await);
    out_of_scope(
        app.patch(&one_lead, &forms_key, json!({ "last_name": "X" }))
            .await,
    );
    out_of_scope(app.get("/api/v1/accounts", &forms_key).await);
    out_of_scope(app.get("/api/v1/pipelines", &forms_key).await);
    // X-API-Key is for the form post only.
    app.send(Method::GET, leads, None, None, &[("x-api-key", &all_key)])
        .await
        .problem(401, "unauthenticated");

    // Read: lists, one record, search; no writes, no other entity, no forms.
    app.get(leads, &reader_key).await.expect(200);
    app.get(&one_lead, &reader_key).await.expect(200);
    app.post(&format!("{leads}/search"), &reader_key, json!({}))
        .await
        .expect(200);
    out_of_scope(
        app.post(leads, &reader_key, json!({ "last_name": "New" }))
            .await,
    );
    out_of_scope(
        app.patch(&one_lead, &reader_key, json!({ "last_name": "X" }))
            .await,
    );
    out_of_scope(app.delete(&one_lead, &reader_key).await);
    out_of_scope(app.get("/api/v1/contacts", &reader_key).await);
    out_of_scope(
        app.post("/api/v1/webhooks/forms", &reader_key, form.clone())
            .await,
    );
    // Its timeline shows activities, which it may not read.
    out_of_scope(app.get(&format!("{one_lead}/timeline"), &reader_key).await);

    // Write includes read, of that entity only.
    let account = app
        .post("/api/v1/accounts", &writer_key, json!({ "name": "Globex" }))
        .await
        .expect(201);
    let account = format!("/api/v1/accounts/{}", account.body["id"].as_str().unwrap());
    app.get(&account, &writer_key).await.expect(200);
    app.patch(&account, &writer_key, json!({ "city": "Lyon" }))
        .await
        .expect(200);
    out_of_scope(app.get(leads, &writer_key).await);

    // `all`: everything an API key may do (keys made before scopes existed have it).
    app.get(leads, &all_key).await.expect(200);
    app.post("/api/v1/webhooks/forms", &all_key, form)
        .await
        .expect(201);
    app.get(&format!("{one_lead}/timeline"), &all_key)
        .await
        .expect(200);
}
