//! `POST /{entity}/{id}/merge` over HTTP: the survivor answers, references move, a merged id
//! answers 308 to the survivor (GET, PATCH, DELETE) and its history joins the survivor's;
//! invoices and other organizations are refused.

use crm_core::Crm;
use serde_json::json;

use crate::helpers::TestApp;

crate::on_both_backends!(
    merged_ids_redirect_to_the_survivor,
    merges_are_refused_clearly,
    erasing_a_survivor_erases_what_it_absorbed,
    a_merged_id_redirects_only_in_its_organization,
    a_merged_id_read_as_of_a_time_redirects_too,
);

/// Another organization asking for a merged id is told nothing: 404, as for any id that is not
/// its own, never a 308 that would name the survivor.
async fn a_merged_id_redirects_only_in_its_organization(crm: Crm) {
    let (app, acme) = TestApp::signed_up(crm).await;
    let t = acme.access.as_str();
    let keep = app.create(t, "accounts", json!({ "name": "Globex" })).await;
    let dup = app
        .create(t, "accounts", json!({ "name": "Globex Inc" }))
        .await;
    app.post(
        &format!("/api/v1/accounts/{keep}/merge"),
        t,
        json!({ "absorb": [dup] }),
    )
    .await
    .expect(200);
    app.get(&format!("/api/v1/accounts/{dup}"), t)
        .await
        .expect(308);

    let other = app.register("initech").await;
    let o = other.access.as_str();
    let path = format!("/api/v1/accounts/{dup}");
    for res in [
        app.get(&path, o).await,
        app.get(&format!("{path}?include_deleted=true"), o).await,
        app.patch(&path, o, json!({ "city": "Rome" })).await,
        app.delete(&path, o).await,
        app.get(&format!("{path}/history"), o).await,
    ] {
        assert!(
            res.headers.get("location").is_none(),
            "no redirect: {:?}",
            res.headers
        );
        res.problem(404, "not-found");
    }
}

/// The person merged into the survivor is erased with it: named in `also_erased`, and their
/// merged id answers 404 (no redirect, nothing in the trash).
async fn erasing_a_survivor_erases_what_it_absorbed(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let t = admin.access.as_str();
    let keep = app
        .create(t, "contacts", json!({ "last_name": "Lovelace" }))
        .await;
    let dup = app
        .create(
            t,
            "contacts",
            json!({ "last_name": "Lovelace", "email": "ada@secret.test" }),
        )
        .await;
    app.post(
        &format!("/api/v1/contacts/{keep}/merge"),
        t,
        json!({ "absorb": [dup] }),
    )
    .await
    .expect(200);
    let res = app
        .post(&format!("/api/v1/contacts/{keep}/erase"), t, json!({}))
        .await
        .expect(200);
    assert_eq!(
        res.body["also_erased"],
        json!([{ "entity": "contact", "id": dup }])
    );
    app.get(&format!("/api/v1/contacts/{dup}?include_deleted=true"), t)
        .await
        .problem(404, "not-found");
}

async fn merged_ids_redirect_to_the_survivor(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let t = admin.access.as_str();
    let keep = app.create(t, "accounts", json!({ "name": "Globex" })).await;
    let dup = app
        .create(
            t,
            "accounts",
            json!({ "name": "Globex Inc", "city": "Oslo" }),
        )
        .await;
    let older = app
        .create(t, "accounts", json!({ "name": "Globex AS" }))
        .await;
    let contact = app
        .create(
            t,
            "contacts",
            json!({ "last_name": "Ada", "account_id": dup }),
        )
        .await;

    // `older` into `dup` first, then `dup` into `keep`: the chain collapses.
    app.post(
        &format!("/api/v1/accounts/{dup}/merge"),
        t,
        json!({ "absorb": [older] }),
    )
    .await
    .expect(200);
    let res = app
        .post(
            &format!("/api/v1/accounts/{keep}/merge"),
            t,
            json!({ "absorb": [dup], "fields": { "city": dup } }),
        )
        .await
        .expect(200);
    assert_eq!(res.body["id"], keep.as_str());
    assert_eq!(res.body["city"], "Oslo");
    assert_eq!(res.headers["etag"], format!("\"{}\"", res.body["version"]));

    let survivor = format!("/api/v1/accounts/{keep}");
    for id in [&dup, &older] {
        let res = app.get(&format!("/api/v1/accounts/{id}"), t).await;
        res.expect(308);
        let res = app.get(&format!("/api/v1/accounts/{id}"), t).await;
        assert_eq!(res.headers["location"], survivor.as_str());
    }
    let res = app
        .get(&format!("/api/v1/accounts/{dup}?include_deleted=false"), t)
        .await
        .expect(308);
    assert_eq!(
        res.headers["location"],
        format!("{survivor}?include_deleted=false")
    );
    // Named where no redirect applies (absorbing it again): a conflict.
    app.post(&format!("{survivor}/merge"), t, json!({ "absorb": [dup] }))
        .await
        .problem(409, "conflict")
        .code("merged");
    app.patch(
        &format!("/api/v1/accounts/{dup}"),
        t,
        json!({ "city": "Rome" }),
    )
    .await
    .expect(308);
    app.delete(&format!("/api/v1/accounts/{dup}"), t)
        .await
        .expect(308);
    app.post(&format!("/api/v1/accounts/{dup}/restore"), t, json!({}))
        .await
        .problem(409, "conflict")
        .code("merged");

    // The contact moved; the survivor's history holds the absorbed records' names.
    let c = app
        .get(&format!("/api/v1/contacts/{contact}"), t)
        .await
        .expect(200);
    assert_eq!(c.body["account_id"], keep.as_str());
    let names = app
        .get(&format!("{survivor}/history?field=name"), t)
        .await
        .expect(200);
    let after: Vec<_> = names.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["after"].as_str().unwrap_or_default().to_owned())
        .collect();
    for n in ["Globex", "Globex Inc", "Globex AS"] {
        assert!(after.iter().any(|a| a == n), "{after:?}");
    }

    // If-Match on the survivor.
    let other = app.create(t, "accounts", json!({ "name": "Else" })).await;
    app.send(
        axum::http::Method::POST,
        &format!("{survivor}/merge"),
        Some(t),
        Some(json!({ "absorb": [other] })),
        &[("if-match", "\"1\"")],
    )
    .await
    .expect(412);
}

/// `?as_of=` on a merged id answers as the plain read does: 308 to the survivor (with the
/// query), not the absorbed record's past state.
async fn a_merged_id_read_as_of_a_time_redirects_too(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let t = admin.access.as_str();
    let keep = app.create(t, "accounts", json!({ "name": "Globex" })).await;
    let dup = app
        .create(t, "accounts", json!({ "name": "Globex Inc" }))
        .await;
    let dup_path = format!("/api/v1/accounts/{dup}");
    let then = app.get(&dup_path, t).await.expect(200).body["updated_at"]
        .as_str()
        .unwrap()
        .replace('+', "%2B");
    app.post(
        &format!("/api/v1/accounts/{keep}/merge"),
        t,
        json!({ "absorb": [dup] }),
    )
    .await
    .expect(200);
    let query = format!("?as_of={then}");
    let res = app.get(&format!("{dup_path}{query}"), t).await.expect(308);
    assert_eq!(
        res.headers["location"],
        format!("/api/v1/accounts/{keep}{query}")
    );
    // The survivor's own past state still reads.
    app.get(&format!("/api/v1/accounts/{keep}{query}"), t)
        .await
        .expect(200);
}

async fn merges_are_refused_clearly(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let t = admin.access.as_str();
    let a = app.create(t, "accounts", json!({ "name": "A" })).await;
    let i1 = app
        .create(t, "invoices", json!({ "account_id": a, "currency": "EUR" }))
        .await;
    let i2 = app
        .create(t, "invoices", json!({ "account_id": a, "currency": "EUR" }))
        .await;
    app.post(
        &format!("/api/v1/invoices/{i1}/merge"),
        t,
        json!({ "absorb": [i2] }),
    )
    .await
    .problem(422, "validation");

    let other = app.register("other").await;
    let theirs = app
        .create(&other.access, "accounts", json!({ "name": "Theirs" }))
        .await;
    app.post(
        &format!("/api/v1/accounts/{a}/merge"),
        t,
        json!({ "absorb": [theirs] }),
    )
    .await
    .problem(404, "not-found");
    app.post(
        &format!("/api/v1/accounts/{a}/merge"),
        t,
        json!({ "absorb": [a] }),
    )
    .await
    .problem(422, "validation");
    app.post(
        &format!("/api/v1/accounts/{a}/merge"),
        t,
        json!({ "absorb": [], "extra": 1 }),
    )
    .await
    .expect(422);
    // Theirs is untouched.
    app.get(&format!("/api/v1/accounts/{theirs}"), &other.access)
        .await
        .expect(200);
}
