//! Computed custom fields over HTTP: a roll-up and a formula defined through
//! `POST /custom-fields/{entity}`, kept current by writes, then read, filtered and sorted through
//! the list endpoint; writes that set them and bad definitions answer 422.

use crm_core::Crm;
use serde_json::{Value, json};

use crate::helpers::TestApp;

crate::on_both_backends!(computed_fields_round_trip);

fn names(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect()
}

async fn computed_fields_round_trip(crm: Crm) {
    let (app, admin) = TestApp::signed_up(crm).await;
    let t = admin.access.as_str();
    let rollup = json!({
        "key": "open_amount", "label": "Open amount", "field_type": "number",
        "computed": {"rollup": {
            "entity": "opportunity", "link": "account_id", "function": "sum",
            "field": "amount_minor",
            "filter": {"field": "status", "op": "eq", "value": "open"}
        }}
    });
    let def = app
        .post("/api/v1/custom-fields/accounts", t, rollup)
        .await
        .expect(201);
    assert_eq!(def.body["computed"]["rollup"]["function"], "sum");
    let formula = json!({
        "key": "major", "label": "Amount", "field_type": "number",
        "computed": {"formula": {"expression": "amount_minor / 100"}}
    });
    app.post("/api/v1/custom-fields/opportunities", t, formula)
        .await
        .expect(201);

    let big = app.create(t, "accounts", json!({"name": "Big"})).await;
    let small = app.create(t, "accounts", json!({"name": "Small"})).await;
    for (account, amount) in [(&big, 500_000), (&big, 250_000), (&small, 1_000)] {
        let deal = json!({"name": "Deal", "account_id": account, "amount_minor": amount, "currency": "EUR"});
        app.create(t, "opportunities", deal).await;
    }
    let got = app
        .get(&format!("/api/v1/accounts/{big}"), t)
        .await
        .expect(200);
    assert_eq!(got.body["custom_fields"]["open_amount"], json!(750_000));
    // Typed filters on custom fields go through search (a query string has no numbers).
    let filter = |field: &str, op: &str, value: i64| json!({"filters": [{"field": field, "op": op, "value": value}]});
    let deals = app
        .post(
            "/api/v1/opportunities/search",
            t,
            filter("custom_fields.major", "gte", 2500),
        )
        .await
        .expect(200);
    assert_eq!(deals.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(deals.body["data"][0]["custom_fields"]["major"], json!(5000));

    let rich = app
        .post(
            "/api/v1/accounts/search",
            t,
            filter("custom_fields.open_amount", "gt", 10000),
        )
        .await
        .expect(200);
    assert_eq!(names(&rich.body), ["Big"]);
    let sorted = app
        .get("/api/v1/accounts?sort=custom_fields.open_amount&limit=1", t)
        .await
        .expect(200);
    assert_eq!(names(&sorted.body), ["Small"]);
    let next = sorted.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(
            &format!("/api/v1/accounts?sort=custom_fields.open_amount&limit=1&cursor={next}"),
            t,
        )
        .await
        .expect(200);
    assert_eq!(names(&rest.body), ["Big"]);

    // Nobody writes a computed value.
    let res = app
        .patch(
            &format!("/api/v1/accounts/{big}"),
            t,
            json!({"custom_fields": {"open_amount": 1}}),
        )
        .await
        .problem(422, "validation");
    assert_eq!(
        res.field_errors(),
        [(
            "custom_fields.open_amount".to_owned(),
            "computed_field".to_owned()
        )]
    );
    // A bad formula says what is wrong.
    let bad = json!({
        "key": "oops", "label": "Oops", "field_type": "number",
        "computed": {"formula": {"expression": "name * 2"}}
    });
    let res = app
        .post("/api/v1/custom-fields/opportunities", t, bad)
        .await
        .problem(422, "validation");
    assert_eq!(
        res.field_errors(),
        [(
            "computed.formula.expression".to_owned(),
            "invalid_formula".to_owned()
        )]
    );
    // A new filter through PATCH: recomputed at once.
    let patch = json!({"computed": {"rollup": {
        "entity": "opportunity", "link": "account_id", "function": "count"
    }}});
    app.patch("/api/v1/custom-fields/accounts/open_amount", t, patch)
        .await
        .expect(200);
    let got = app
        .get(&format!("/api/v1/accounts/{big}"), t)
        .await
        .expect(200);
    assert_eq!(got.body["custom_fields"]["open_amount"], json!(2));
}
