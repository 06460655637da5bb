//! Duplicates over HTTP: `?duplicates=warn|reject|ignore` on create and batch (warnings in the
//! `Crm-Duplicates` header or per item, refusals as a 409 listing the matches), and unique
//! custom fields answering 409 `duplicate`.

use axum::http::Method;
use crm_core::Crm;
use serde_json::json;

use crate::helpers::TestApp;

crate::on_both_backends!(
    creates_warn_reject_or_ignore_duplicates,
    idempotent_creates_replay_their_duplicates,
    unique_custom_fields_answer_409,
);

async fn creates_warn_reject_or_ignore_duplicates(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let t = admin.access.as_str();
    let ada = json!({ "email": "ada@example.com" });
    let first = app.create(t, "contacts", ada.clone()).await;

    // Default: warn, in a header; the body is the record as always.
    let res = app
        .post("/api/v1/contacts", t, ada.clone())
        .await
        .expect(201);
    assert_eq!(res.headers["crm-duplicates"], format!("email:{first}"));
    assert_eq!(res.body["email"], "ada@example.com");
    let second = res.body["id"].as_str().unwrap().to_owned();

    let res = app
        .post("/api/v1/contacts?duplicates=ignore", t, ada.clone())
        .await
        .expect(201);
    assert!(res.headers.get("crm-duplicates").is_none());

    let res = app
        .post(
            "/api/v1/contacts?duplicates=reject",
            t,
            json!({ "email": "ADA@example.com" }),
        )
        .await
        .problem(409, "conflict")
        .code("duplicates");
    let matches = res.body["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 3, "{}", res.body);
    assert_eq!(matches[0]["rule"], "email");
    assert_eq!(matches[0]["index"], 0);
    let ids: Vec<_> = matches.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&first.as_str()) && ids.contains(&second.as_str()));

    app.post("/api/v1/contacts?duplicates=maybe", t, ada.clone())
        .await
        .expect(400);

    // Batch: per item, an earlier item of the batch counts.
    let res = app
        .post(
            "/api/v1/accounts/batch",
            t,
            json!({ "create": [
                { "name": "Acme Inc", "domain": "acme.com" },
                { "name": "ACME, LLC" },
            ]}),
        )
        .await
        .expect(200);
    let results = res.body["results"].as_array().unwrap();
    assert!(results[0].get("duplicates").is_none(), "{}", res.body);
    assert_eq!(results[1]["duplicates"][0]["rule"], "name");
    assert_eq!(results[1]["duplicates"][0]["id"], results[0]["data"]["id"]);
    let res = app
        .post(
            "/api/v1/accounts/batch?duplicates=reject",
            t,
            json!({ "create": [{ "name": "Other", "domain": "www.ACME.com" }] }),
        )
        .await
        .expect(200);
    let item = &res.body["results"][0];
    assert_eq!(item["status"], 409, "{}", res.body);
    assert_eq!(item["error"]["code"], "duplicates");
    assert_eq!(item["error"]["matches"][0]["rule"], "domain");
}

/// A replay answers what the first request answered, its `Crm-Duplicates` warning included;
/// the same key with another `?duplicates=` is another request.
async fn idempotent_creates_replay_their_duplicates(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let t = admin.access.as_str();
    let ada = json!({ "email": "ada@example.com" });
    let first = app.create(t, "contacts", ada.clone()).await;
    let create = |query: &'static str, key: &'static str| {
        let (app, ada) = (&app, ada.clone());
        async move {
            app.send(
                Method::POST,
                &format!("/api/v1/contacts{query}"),
                Some(t),
                Some(ada),
                &[("idempotency-key", key)],
            )
            .await
        }
    };

    let warned = create("", "d1").await.expect(201);
    assert_eq!(warned.headers["crm-duplicates"], format!("email:{first}"));
    let replayed = create("", "d1").await.expect(201);
    assert_eq!(replayed.headers["idempotent-replayed"], "true");
    assert_eq!(replayed.body["id"], warned.body["id"]);
    assert_eq!(replayed.headers["crm-duplicates"], format!("email:{first}"));
    // `?duplicates=warn` is the default spelled out: the same request.
    let spelled = create("?duplicates=warn", "d1").await.expect(201);
    assert_eq!(spelled.headers["idempotent-replayed"], "true");
    create("?duplicates=reject", "d1")
        .await
        .problem(422, "idempotency-key-reused");
    create("?duplicates=ignore", "d1")
        .await
        .problem(422, "idempotency-key-reused");

    // A refusal is remembered with its policy; the default policy is another request.
    let refused = create("?duplicates=reject", "d2")
        .await
        .problem(409, "conflict")
        .code("duplicates");
    let again = create("?duplicates=reject", "d2")
        .await
        .problem(409, "conflict");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body, refused.body);
    create("", "d2")
        .await
        .problem(422, "idempotency-key-reused");
}

async fn unique_custom_fields_answer_409(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let t = admin.access.as_str();
    let def = json!({ "key": "vat", "label": "VAT", "field_type": "text", "unique": true });
    let res = app
        .post("/api/v1/custom-fields/accounts", t, def)
        .await
        .expect(201);
    assert_eq!(res.body["unique"], true);
    let bad = json!({ "key": "flag", "label": "Flag", "field_type": "boolean", "unique": true });
    app.post("/api/v1/custom-fields/accounts", t, bad)
        .await
        .problem(422, "validation");

    let a = app
        .create(
            t,
            "accounts",
            json!({ "name": "A", "custom_fields": { "vat": "X1" } }),
        )
        .await;
    app.create(t, "accounts", json!({ "name": "B" })).await;
    app.create(t, "accounts", json!({ "name": "C" })).await;
    let res = app
        .post(
            "/api/v1/accounts",
            t,
            json!({ "name": "D", "custom_fields": { "vat": "X1" } }),
        )
        .await
        .problem(409, "conflict")
        .code("duplicate");
    assert!(
        res.body["detail"]
            .as_str()
            .unwrap()
            .contains("custom_fields.vat"),
        "{}",
        res.body
    );
    // Another organization has its own values.
    let other = app.register("other").await;
    app.create(&other.access, "accounts", json!({ "name": "A" }))
        .await;
    let def = json!({ "key": "vat", "label": "VAT", "field_type": "text", "unique": true });
    app.post("/api/v1/custom-fields/accounts", &other.access, def)
        .await
        .expect(201);
    app.create(
        &other.access,
        "accounts",
        json!({ "name": "Z", "custom_fields": { "vat": "X1" } }),
    )
    .await;
    let _ = a;
}
