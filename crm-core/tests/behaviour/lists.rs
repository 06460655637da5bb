//! Filters (every operator, standard and custom fields), sorting, keyset pagination, trash.

use std::collections::HashSet;

use crm_core::{
    Account, AccountId, CustomFieldType, Deleted, Direction, EntityKind, Error, ListQuery,
    NewAccount, Op, Record, Tenant,
};
use serde_json::{Value, json};

use crate::harness::{Fixtures as _, Org};

async fn seed(crm: &crm_core::Crm, org: &Org, t: &Tenant) -> Vec<Record<Account>> {
    org.define_fields(
        crm,
        EntityKind::Account,
        &[
            ("score", CustomFieldType::Number),
            ("tier", CustomFieldType::Text),
            ("vip", CustomFieldType::Boolean),
        ],
    )
    .await;
    let rows = [
        (
            "Alpha",
            Some("alpha.io"),
            Some(10),
            json!({"score": 9, "tier": "gold", "vip": true}),
        ),
        (
            "Beta",
            Some("beta.com"),
            Some(200),
            json!({"score": 10, "tier": "silver"}),
        ),
        (
            "Gamma 50%_off",
            None,
            None,
            json!({"score": 2.5, "tier": "Gold"}),
        ),
        ("delta", Some("DELTA.com"), Some(3000), json!({})),
    ];
    let mut out = Vec::new();
    for (name, domain, employees, cf) in rows {
        let mut new = NewAccount {
            name: name.into(),
            domain: domain.map(Into::into),
            employee_count: employees,
            ..Default::default()
        };
        new.custom_fields = cf.as_object().cloned().unwrap();
        out.push(t.accounts().create(new).await.unwrap());
    }
    out
}

async fn names(t: &Tenant, q: ListQuery) -> Vec<String> {
    let page = t.accounts().list(&q).await.unwrap();
    let mut names: Vec<_> = page.data.into_iter().map(|a| a.fields.name).collect();
    names.sort();
    names
}

async fn every_filter_operator(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.user(&crm);
    let rows = seed(&crm, &org, &t).await;
    let q = ListQuery::default;

    // Standard columns.
    assert_eq!(
        names(&t, q().filter("name", Op::Eq, "Beta")).await,
        ["Beta"]
    );
    assert_eq!(
        names(&t, q().filter("domain", Op::Ne, "beta.com")).await,
        ["Alpha", "Gamma 50%_off", "delta"]
    );
    assert_eq!(
        names(&t, q().filter("employee_count", Op::Lt, 200)).await,
        ["Alpha"]
    );
    assert_eq!(
        names(&t, q().filter("employee_count", Op::Lte, 200)).await,
        ["Alpha", "Beta"]
    );
    assert_eq!(
        names(&t, q().filter("employee_count", Op::Gt, 200)).await,
        ["delta"]
    );
    assert_eq!(
        names(&t, q().filter("employee_count", Op::Gte, 200)).await,
        ["Beta", "delta"]
    );
    assert_eq!(
        names(
            &t,
            q().filter("name", Op::In, json!(["Alpha", "delta", "nope"]))
        )
        .await,
        ["Alpha", "delta"]
    );
    assert_eq!(
        names(&t, q().filter("domain", Op::Contains, "COM")).await,
        ["Beta", "delta"]
    );
    assert_eq!(
        names(&t, q().filter("name", Op::Contains, "50%_")).await,
        ["Gamma 50%_off"],
        "wildcards are literal"
    );
    assert_eq!(
        names(&t, q().filter("name", Op::Contains, "%")).await,
        ["Gamma 50%_off"]
    );
    assert_eq!(
        names(&t, q().filter("name", Op::StartsWith, "DEL")).await,
        ["delta"]
    );
    assert_eq!(
        names(&t, q().filter("domain", Op::IsNull, true)).await,
        ["Gamma 50%_off"]
    );
    assert_eq!(
        names(&t, q().filter("domain", Op::IsNull, false))
            .await
            .len(),
        3
    );
    assert_eq!(
        names(&t, q().filter("id", Op::Eq, rows[0].id.to_string())).await,
        ["Alpha"]
    );
    let since = rows[1].created_at.to_rfc3339();
    assert_eq!(
        names(&t, q().filter("created_at", Op::Gte, since)).await,
        ["Beta", "Gamma 50%_off", "delta"]
    );
    // Several filters combine with AND.
    assert_eq!(
        names(
            &t,
            q().filter("employee_count", Op::Gte, 10)
                .filter("domain", Op::Contains, "a")
        )
        .await,
        ["Alpha", "Beta", "delta"]
    );

    // Custom fields compare by their JSON type: 9 < 10 numerically, not as text.
    let cf = |k: &str| format!("custom_fields.{k}");
    assert_eq!(
        names(&t, q().filter(cf("tier"), Op::Eq, "gold")).await,
        ["Alpha"]
    );
    assert_eq!(
        names(&t, q().filter(cf("vip"), Op::Eq, true)).await,
        ["Alpha"]
    );
    assert_eq!(
        names(&t, q().filter(cf("score"), Op::Eq, 10)).await,
        ["Beta"]
    );
    assert_eq!(
        names(&t, q().filter(cf("score"), Op::Gt, 9)).await,
        ["Beta"]
    );
    assert_eq!(
        names(&t, q().filter(cf("score"), Op::Gte, 9)).await,
        ["Alpha", "Beta"]
    );
    assert_eq!(
        names(&t, q().filter(cf("score"), Op::Lt, 9)).await,
        ["Gamma 50%_off"]
    );
    assert_eq!(
        names(&t, q().filter(cf("score"), Op::Lte, 2.5)).await,
        ["Gamma 50%_off"]
    );
    assert_eq!(
        names(&t, q().filter(cf("tier"), Op::Ne, "gold")).await,
        ["Beta", "Gamma 50%_off", "delta"]
    );
    assert_eq!(
        names(
            &t,
            q().filter(cf("tier"), Op::In, json!(["gold", "silver"]))
        )
        .await,
        ["Alpha", "Beta"]
    );
    assert_eq!(
        names(&t, q().filter(cf("tier"), Op::Contains, "OL")).await,
        ["Alpha", "Gamma 50%_off"]
    );
    assert_eq!(
        names(&t, q().filter(cf("tier"), Op::StartsWith, "sil")).await,
        ["Beta"]
    );
    assert_eq!(
        names(&t, q().filter(cf("score"), Op::IsNull, true)).await,
        ["delta"]
    );
    assert_eq!(
        names(&t, q().filter(cf("score"), Op::IsNull, false))
            .await
            .len(),
        3
    );
}

async fn bad_queries_are_validation_errors(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.user(&crm);
    let tier = [("tier", CustomFieldType::Text)];
    org.define_fields(&crm, EntityKind::Account, &tier).await;
    let q = ListQuery::default;
    let cases = [
        (
            q().filter("custom_fields.undefined", Op::Eq, 1),
            "filters[0].field",
        ),
        (
            q().filter("custom_fields.tier", Op::Gt, 1),
            "filters[0].value",
        ),
        (q().filter("password_hash", Op::Eq, "x"), "filters[0].field"),
        (
            q().filter("organization_id", Op::Eq, "x"),
            "filters[0].field",
        ),
        (
            q().filter("custom_fields.Bad-Key", Op::Eq, 1),
            "filters[0].field",
        ),
        (
            q().filter("employee_count", Op::Eq, "ten"),
            "filters[0].value",
        ),
        (q().filter("id", Op::Eq, "not-a-uuid"), "filters[0].value"),
        (
            q().filter("employee_count", Op::Contains, "1"),
            "filters[0].op",
        ),
        (q().filter("name", Op::In, json!([])), "filters[0].value"),
        (q().filter("name", Op::Eq, Value::Null), "filters[0].value"),
        (q().filter("name", Op::IsNull, "yes"), "filters[0].value"),
        (
            q().filter("custom_fields.tier", Op::Eq, json!({"a": 1})),
            "filters[0].value",
        ),
        (q().sort("website", Direction::Asc), "sort"),
        (q().limit(0), "limit"),
        (q().limit(101), "limit"),
        (q().cursor(Some("garbage".into())), "cursor"),
    ];
    for (query, field) in cases {
        match t.accounts().list(&query).await {
            Err(Error::Validation(errors)) => assert_eq!(errors[0].field, field, "{query:?}"),
            other => panic!("{query:?} should be a validation error, got {other:?}"),
        }
    }
    // A cursor made under one sort is refused under another.
    for i in 0..3 {
        t.account(&format!("A{i}")).await;
    }
    let page = t.accounts().list(&q().limit(1)).await.unwrap();
    let err = t
        .accounts()
        .list(&q().sort("name", Direction::Asc).cursor(page.next_cursor))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].field == "cursor"),
        "{err:?}"
    );
}

/// Walks every page of `query` and returns the ids in order.
async fn walk(t: &Tenant, query: ListQuery) -> Vec<AccountId> {
    let mut ids = Vec::new();
    let mut q = query;
    for _ in 0..100 {
        let page = t.accounts().list(&q).await.unwrap();
        assert!(page.data.len() <= q.limit.unwrap_or(50) as usize);
        ids.extend(page.data.iter().map(|a| a.id));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return ids,
        }
    }
    panic!("pagination did not end");
}

async fn keyset_pagination_with_equal_sort_keys(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.user(&crm);
    // 57 accounts sharing 3 names and 4 domains (one of them NULL).
    let domains = [Some("a.com"), None, Some("b.com"), Some("a.com")];
    let mut all = Vec::new();
    for i in 0..57 {
        let a = t
            .accounts()
            .create(NewAccount {
                name: ["Same", "Other", "Third"][i % 3].into(),
                domain: domains[i % 4].map(Into::into),
                ..Default::default()
            })
            .await
            .unwrap();
        all.push(a);
    }

    for (field, direction) in [
        ("id", Direction::Asc),
        ("name", Direction::Asc),
        ("name", Direction::Desc),
        ("domain", Direction::Asc),
        ("domain", Direction::Desc),
        ("created_at", Direction::Desc),
    ] {
        let ids = walk(&t, ListQuery::default().sort(field, direction).limit(7)).await;
        let unique: HashSet<_> = ids.iter().collect();
        assert_eq!(ids.len(), 57, "{field} {direction:?}: no row skipped");
        assert_eq!(unique.len(), 57, "{field} {direction:?}: no row repeated");

        // The order is the sort key, then the id, in the same direction; empty values count
        // as the largest.
        let key = |id: &AccountId| {
            let a = all.iter().find(|a| a.id == *id).unwrap();
            let v = serde_json::to_value(a).unwrap()[field].clone();
            // Timestamps compare as times (their text has a varying number of digits).
            let time = (field == "created_at").then_some(a.created_at);
            (v.is_null(), time, v.as_str().map(str::to_owned), a.id)
        };
        let keys: Vec<_> = ids.iter().map(key).collect();
        let mut expected = keys.clone();
        expected.sort();
        if direction == Direction::Desc {
            expected.reverse();
        }
        assert_eq!(keys, expected, "{field} {direction:?}");
    }

    // Filters and pagination together.
    let ids = walk(
        &t,
        ListQuery::default()
            .filter("name", Op::Eq, "Same")
            .sort("domain", Direction::Asc)
            .limit(4),
    )
    .await;
    assert_eq!(ids.len(), 19);
}

async fn trash_views(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.admin(&crm);
    let rows = seed(&crm, &org, &t).await;
    t.accounts().delete(rows[0].id).await.unwrap();
    assert_eq!(
        names(&t, ListQuery::default()).await,
        ["Beta", "Gamma 50%_off", "delta"]
    );
    assert_eq!(
        names(&t, ListQuery::default().deleted(Deleted::Only)).await,
        ["Alpha"]
    );
    assert_eq!(
        names(&t, ListQuery::default().deleted(Deleted::Include))
            .await
            .len(),
        4
    );
    t.accounts().restore(rows[0].id).await.unwrap();
    assert!(
        names(&t, ListQuery::default().deleted(Deleted::Only))
            .await
            .is_empty()
    );
}

crate::on_both_backends!(
    every_filter_operator,
    bad_queries_are_validation_errors,
    keyset_pagination_with_equal_sort_keys,
    trash_views,
    condition_trees_between_and_exists,
);

async fn condition_trees_between_and_exists(crm: crm_core::Crm) {
    use crm_core::Condition as C;
    let org = Org::new(&crm, "Acme").await;
    let t = org.user(&crm);
    seed(&crm, &org, &t).await;
    let q = |c: C| ListQuery::default().condition(c);

    // (industry-less) Alpha(10) Beta(200) Gamma(null) delta(3000)
    let between = C::filter("employee_count", Op::Between, json!([10, 200]));
    assert_eq!(
        names(&t, q(between.clone())).await,
        ["Alpha", "Beta"],
        "bounds included"
    );
    assert_eq!(
        names(&t, q(!between.clone())).await,
        ["Gamma 50%_off", "delta"],
        "not: a record without a value does not match the inner filter, so it matches"
    );
    let either = C::or(vec![
        between.clone(),
        C::filter("domain", Op::Exists, false),
    ]);
    assert_eq!(
        names(&t, q(either)).await,
        ["Alpha", "Beta", "Gamma 50%_off"]
    );
    let nested = C::and(vec![
        C::or(vec![
            C::filter("name", Op::StartsWith, "a"),
            C::filter("name", Op::StartsWith, "d"),
        ]),
        !C::filter("custom_fields.vip", Op::Eq, true),
    ]);
    assert_eq!(names(&t, q(nested)).await, ["delta"]);
    assert_eq!(
        names(
            &t,
            q(C::filter(
                "custom_fields.score",
                Op::Between,
                json!([2.5, 9])
            ))
        )
        .await,
        ["Alpha", "Gamma 50%_off"]
    );
    assert_eq!(
        names(&t, q(C::filter("custom_fields.vip", Op::Exists, true))).await,
        ["Alpha"]
    );
    // Empty groups: `and` of nothing holds, `or` of nothing does not.
    assert_eq!(names(&t, q(C::and(vec![]))).await.len(), 4);
    assert!(names(&t, q(C::or(vec![]))).await.is_empty());
    // Filters and the tree combine with AND.
    let both = ListQuery::default()
        .filter("domain", Op::Exists, true)
        .condition(between);
    assert_eq!(names(&t, both).await, ["Alpha", "Beta"]);

    // Errors are named by their place in the tree.
    let bad = C::and(vec![
        C::filter("name", Op::Eq, "x"),
        C::or(vec![
            C::filter("nope", Op::Eq, 1),
            C::filter("employee_count", Op::Between, json!([1])),
        ]),
    ]);
    let Err(Error::Validation(errors)) = t.accounts().list(&q(bad)).await else {
        panic!("expected validation")
    };
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "condition.and[1].or[0].field",
            "condition.and[1].or[1].value"
        ]
    );
    let mut deep = C::filter("name", Op::Eq, "x");
    for _ in 0..10 {
        deep = !deep;
    }
    let Err(Error::Validation(errors)) = t.accounts().list(&q(deep)).await else {
        panic!("expected validation")
    };
    assert_eq!(errors[0].code, "too_deep");
    // The JSON form, as an API client sends it.
    let parsed: ListQuery = serde_json::from_value(json!({
        "condition": {"or": [{"field": "name", "op": "eq", "value": "Beta"}, {"not": {"field": "domain", "op": "exists", "value": true}}]}
    }))
    .unwrap();
    assert_eq!(names(&t, parsed).await, ["Beta", "Gamma 50%_off"]);
}
