//! `GET /changes`: the change feed over HTTP — who may read it, paging by cursor, and what a
//! bad cursor or limit answers.

use crm_core::{Crm, Role};
use serde_json::{Value, json};

use crate::helpers::TestApp;

crate::on_both_backends!(the_feed_pages_in_commit_order_for_admins_and_keys);

/// The `(entity, action)` of each change of a page.
fn actions(page: &Value) -> Vec<(String, String)> {
    crate::helpers::pairs(page, "entity", "action")
}

async fn the_feed_pages_in_commit_order_for_admins_and_keys(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let t = admin.access.as_str();
    let head = app.get("/api/v1/changes/head", t).await.expect(200);
    let start = head.body["cursor"].as_str().unwrap().to_owned();

    let id = app.create(t, "accounts", json!({ "name": "Globex" })).await;
    let path = format!("/api/v1/accounts/{id}");
    app.patch(&path, t, json!({ "city": "Oslo" }))
        .await
        .expect(200);
    app.delete(&path, t).await.expect(204);

    let feed = |query: String, token: &str| {
        let (app, token) = (&app, token.to_owned());
        async move { app.get(&format!("/api/v1/changes?{query}"), &token).await }
    };
    let all = feed(format!("after={start}"), t).await.expect(200);
    let expected = [
        ("account", "created"),
        ("account", "updated"),
        ("account", "deleted"),
    ]
    .map(|(e, a)| (e.to_owned(), a.to_owned()));
    assert_eq!(actions(&all.body), expected);
    assert_eq!(all.body["next_cursor"], Value::Null, "caught up");
    assert_eq!(all.body["data"][1]["changes"]["city"]["after"], "Oslo");

    // One a page: `next_cursor` while more wait, then each change's own cursor.
    let first = feed(format!("after={start}&limit=1"), t).await.expect(200);
    let next = first.body["next_cursor"].as_str().unwrap();
    assert_eq!(next, first.body["data"][0]["cursor"]);
    let rest = feed(format!("after={next}"), t).await.expect(200);
    assert_eq!(actions(&rest.body), expected[1..]);

    // Keys need the `changes` scope; users are refused.
    let reader = app.api_key(t, &["changes"]).await;
    let page = feed(format!("after={start}"), &reader).await.expect(200);
    assert_eq!(actions(&page.body), expected);
    let other = app.api_key(t, &["accounts:read"]).await;
    app.get("/api/v1/changes", &other)
        .await
        .problem(403, "forbidden")
        .code("out_of_scope");
    let user = app.user(&admin, "u@example.com", Role::User).await;
    app.get("/api/v1/changes", &user.access)
        .await
        .problem(403, "forbidden")
        .code("admin_only");

    // Another organization's admin sees none of it, even from this organization's cursor.
    let globex = app.register("globex").await;
    let theirs = feed(format!("after={start}"), &globex.access)
        .await
        .expect(200);
    assert!(
        actions(&theirs.body).iter().all(|(e, _)| e == "user"),
        "{}",
        theirs.body
    );

    for bad in ["after=nope", "limit=0", "limit=1001"] {
        feed(bad.to_owned(), t).await.problem(422, "validation");
    }
    app.get("/api/v1/changes?since=1", t)
        .await
        .problem(400, "bad-request");

    // Past a retention sweep, a cursor behind the horizon is told, not served a gap.
    let org = crm_core::OrganizationId::from_uuid(admin.org);
    let system = app.crm.tenant(&crm_core::TenantContext::system(org));
    let expired = system.changes().expire_before(chrono::Utc::now()).await;
    assert!(expired.unwrap().events > 0);
    feed(format!("after={start}"), t)
        .await
        .problem(410, "gone")
        .code("cursor_expired");
    feed(String::new(), t).await.expect(200);
}
