//! Lists and searches across links over HTTP: `filter[account.employee_count][gt]=`,
//! `sort=account.name`, `{"exists": …}` in a search, and API keys that must be allowed to read
//! every kind a query reaches.

use crm_core::Crm;
use serde_json::{Value, json};

use crate::helpers::TestApp;

crate::on_both_backends!(queries_follow_links_within_the_callers_scopes);

/// The `name` (or `email`) of each record of a page.
fn labels(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().or(r["email"].as_str()).unwrap())
        .collect()
}

async fn queries_follow_links_within_the_callers_scopes(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let t = admin.access.as_str();
    let big = json!({ "name": "Big", "employee_count": 1000 });
    let big = app.create(t, "accounts", big).await;
    let small = json!({ "name": "Small", "employee_count": 10 });
    let small = app.create(t, "accounts", small).await;
    for (email, account) in [("ada@big.example", &big), ("bob@small.example", &small)] {
        let body = json!({ "email": email, "account_id": account });
        app.create(t, "contacts", body).await;
    }
    let deal = json!({ "name": "Renewal", "account_id": big });
    app.create(t, "opportunities", deal).await;

    let large = "/api/v1/contacts?filter[account.employee_count][gt]=500";
    let found = app.get(large, t).await.expect(200);
    assert_eq!(labels(&found.body), ["ada@big.example"]);
    let first = app
        .get("/api/v1/contacts?sort=-account.name&limit=1", t)
        .await
        .expect(200);
    assert_eq!(labels(&first.body), ["bob@small.example"]);
    let next = first.body["next_cursor"].as_str().unwrap();
    let rest = format!("/api/v1/contacts?sort=-account.name&limit=1&cursor={next}");
    let second = app.get(&rest, t).await.expect(200);
    assert_eq!(labels(&second.body), ["ada@big.example"]);

    let open = json!({ "condition": { "exists": {
        "relation": "opportunities",
        "where": { "field": "status", "op": "eq", "value": "open" },
    } } });
    let with_open = app
        .post("/api/v1/accounts/search", t, open.clone())
        .await
        .expect(200);
    assert_eq!(labels(&with_open.body), ["Big"]);
    let none = json!({ "condition": { "not": { "exists": { "relation": "opportunities" } } } });
    let without = app
        .post("/api/v1/accounts/search", t, none)
        .await
        .expect(200);
    assert_eq!(labels(&without.body), ["Small"]);
    let widgets = json!({ "condition": { "exists": { "relation": "widgets" } } });
    let res = app
        .post("/api/v1/accounts/search", t, widgets)
        .await
        .problem(422, "validation");
    assert_eq!(
        res.field_errors(),
        [(
            "condition.exists.relation".to_owned(),
            "unknown_relation".to_owned()
        )]
    );

    // A key reads through links only the kinds its scopes name.
    let contacts_only = app.api_key(t, &["contacts:read"]).await;
    app.get("/api/v1/contacts", &contacts_only)
        .await
        .expect(200);
    app.get(large, &contacts_only)
        .await
        .problem(403, "forbidden")
        .code("out_of_scope");
    let accounts_only = app.api_key(t, &["accounts:read"]).await;
    app.post("/api/v1/accounts/search", &accounts_only, open.clone())
        .await
        .problem(403, "forbidden")
        .code("out_of_scope");
    let both = app
        .api_key(t, &["contacts:read", "accounts:read", "opportunities:read"])
        .await;
    app.get(large, &both).await.expect(200);
    app.post("/api/v1/accounts/search", &both, open)
        .await
        .expect(200);
}
