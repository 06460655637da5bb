//! `GET /search`: full-text search over HTTP — hits of the caller's organization, kinds, paging,
//! API-key scopes per kind searched, and what a bad query answers.

use crm_core::Crm;
use serde_json::{Value, json};

use crate::helpers::TestApp;

crate::on_both_backends!(search_finds_prefixes_pages_and_keeps_to_scopes);

/// The `(kind, title)` of each hit of a page.
fn hits(page: &Value) -> Vec<(String, String)> {
    crate::helpers::pairs(page, "kind", "title")
}

async fn search_finds_prefixes_pages_and_keeps_to_scopes(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm.clone()).await;
    let t = admin.access.as_str();
    let ada = app
        .create(
            t,
            "contacts",
            json!({ "first_name": "Ada", "last_name": "Lovelace", "email": "ada@engines.example" }),
        )
        .await;
    app.create(t, "accounts", json!({ "name": "Lovelace Engines" }))
        .await;
    app.create(
        t,
        "leads",
        json!({ "last_name": "Lovell", "company": "Engines Ltd" }),
    )
    .await;
    // Another organization's namesake is never found.
    let other = app.register("other").await;
    app.create(
        &other.access,
        "contacts",
        json!({ "last_name": "Lovelace" }),
    )
    .await;

    let search = |query: &str, token: &str| {
        let (app, path, token) = (&app, format!("/api/v1/search?{query}"), token.to_owned());
        async move { app.get(&path, &token).await }
    };
    let all = search("q=lov", t).await.expect(200);
    assert_eq!(hits(&all.body).len(), 3, "{}", all.body);
    let one = search("q=ada%20lovel", t).await.expect(200);
    assert_eq!(
        hits(&one.body),
        [(
            "contact".to_owned(),
            "Ada Lovelace ada@engines.example".to_owned()
        )]
    );
    assert_eq!(one.body["data"][0]["id"], ada);
    let kinds = search("q=engines&kinds=account,lead", t).await.expect(200);
    let mut found: Vec<String> = hits(&kinds.body).into_iter().map(|h| h.0).collect();
    found.sort();
    assert_eq!(found, ["account", "lead"]);

    // Paging: a cursor per page until the last.
    let first = search("q=lov&limit=2", t).await.expect(200);
    let next = first.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = search(&format!("q=lov&limit=2&cursor={next}"), t)
        .await
        .expect(200);
    assert_eq!(hits(&rest.body).len(), 1);
    assert_eq!(rest.body["next_cursor"], Value::Null);

    // A key reads the kinds its scopes name.
    let contacts = app.api_key(t, &["contacts:read"]).await;
    let mine = search("q=lov&kinds=contact", &contacts).await.expect(200);
    assert_eq!(hits(&mine.body).len(), 1);
    search("q=lov", &contacts)
        .await
        .problem(403, "forbidden")
        .code("out_of_scope");
    search("q=lov&kinds=contact,lead", &contacts)
        .await
        .problem(403, "forbidden")
        .code("out_of_scope");
    let every = app
        .api_key(
            t,
            &[
                "accounts:read",
                "contacts:write",
                "leads:read",
                "opportunities:read",
            ],
        )
        .await;
    assert_eq!(
        hits(&search("q=lov", &every).await.expect(200).body).len(),
        3
    );

    // Bad queries name the parameter.
    for (query, field, code) in [
        ("q=%20--%20", "q", "required"),
        ("q=a&limit=0", "limit", "out_of_range"),
        ("q=a&kinds=invoice", "kinds", "not_searchable"),
        ("q=a&kinds=nope", "kinds", "unknown_kind"),
        ("q=a&cursor=garbage", "cursor", "invalid_cursor"),
    ] {
        let res = search(query, t).await.problem(422, "validation");
        assert_eq!(
            res.field_errors(),
            [(field.to_owned(), code.to_owned())],
            "{query}"
        );
    }
    search("", t).await.expect(400);
    app.get("/api/v1/search?q=a", "nope").await.expect(401);
}
