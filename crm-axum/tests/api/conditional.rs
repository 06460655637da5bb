//! Conditional writes: `If-Match` on patch, soft delete and purge (RFC 9110 §13.1.1).

use axum::http::Method;
use crm_core::Crm;
use serde_json::json;

use crate::helpers::TestApp;

crate::on_both_backends!(
    a_well_formed_tag_that_matches_nothing_is_412,
    purge_with_if_match_checks_the_version,
);

async fn a_well_formed_tag_that_matches_nothing_is_412(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
    let t = s.access.as_str();
    let id = app.create(t, "accounts", json!({ "name": "A" })).await;
    let path = format!("/api/v1/accounts/{id}");
    // Entity tags that are no version of this API cannot match: the precondition fails.
    for tag in ["\"nope\"", "W/\"nope\"", "\"\""] {
        for method in [Method::PATCH, Method::DELETE] {
            let body = (method == Method::PATCH).then(|| json!({ "name": "B" }));
            app.send(method, &path, Some(t), body, &[("if-match", tag)])
                .await
                .problem(412, "version-mismatch");
        }
    }
    // A value that is no entity tag at all stays a malformed request.
    app.patch_if_match(&path, t, json!({ "name": "B" }), "nope")
        .await
        .problem(400, "bad-request");
    // Nothing was written.
    let r = app.get(&path, t).await.expect(200);
    assert_eq!(r.body["name"], "A");
    assert_eq!(r.body["version"], 1);
}

async fn purge_with_if_match_checks_the_version(crm: Crm) {
    let (app, s) = TestApp::signed_up(crm).await;
    let t = s.access.as_str();
    let id = app.create(t, "accounts", json!({ "name": "A" })).await;
    let path = format!("/api/v1/accounts/{id}?permanent=true");
    for tag in ["\"2\"", "\"nope\""] {
        app.delete_if_match(&path, t, tag)
            .await
            .problem(412, "version-mismatch");
    }
    app.delete_if_match(&path, t, "\"1\"").await.expect(204);
    app.get(&format!("/api/v1/accounts/{id}?include_deleted=true"), t)
        .await
        .problem(404, "not-found");
}
