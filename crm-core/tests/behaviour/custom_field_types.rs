//! Typed custom fields: definitions, value checks, defaults, archiving and typed filters.

use crm_core::{
    AccountPatch, CustomFieldPatch, CustomFieldType as T, EntityKind, Error, ListQuery, NewAccount,
    NewCustomField, Op, Tenant,
};
use serde_json::{Value, json};

use crate::harness::{Fixtures as _, Org, define};

fn account(name: &str, custom: Value) -> NewAccount {
    NewAccount {
        name: name.into(),
        custom_fields: custom.as_object().cloned().unwrap(),
        ..Default::default()
    }
}

async fn names(t: &Tenant, field: &str, op: Op, value: Value) -> Vec<String> {
    let q = ListQuery::default().filter(format!("custom_fields.{field}"), op, value);
    let mut names: Vec<_> = t
        .accounts()
        .list(&q)
        .await
        .unwrap()
        .data
        .into_iter()
        .map(|a| a.fields.name)
        .collect();
    names.sort();
    names
}

async fn values_are_checked_by_type(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    for (key, ty, options) in [
        ("note", T::Text, &[][..]),
        ("score", T::Number, &[]),
        ("vip", T::Boolean, &[]),
        ("renewal", T::Date, &[]),
        ("last_seen", T::Datetime, &[]),
        ("tier", T::Select, &["gold", "silver"]),
        ("tags", T::MultiSelect, &["a", "b"]),
        ("billing", T::Email, &[]),
        ("site", T::Url, &[]),
        ("budget", T::Currency, &[]),
    ] {
        define(&crm, &org, EntityKind::Account, key, ty, options).await;
    }
    let t = org.user(&crm);
    let good = json!({
        "note": "hello", "score": 4.5, "vip": true, "renewal": "2027-03-01",
        "last_seen": "2027-03-01T10:00:00+02:00", "tier": "gold", "tags": ["a", "b"],
        "billing": "ap@globex.test", "site": "https://globex.test",
        "budget": {"amount_minor": 150000, "currency": "EUR"}
    });
    let a = t.accounts().create(account("Good", good)).await.unwrap();
    assert_eq!(
        a.custom_fields["last_seen"],
        json!("2027-03-01T08:00:00.000000Z"),
        "normalized to UTC"
    );

    let bad = json!({
        "note": 1, "score": "4", "vip": "yes", "renewal": "01/03/2027", "last_seen": "yesterday",
        "tier": "bronze", "tags": ["a", "a"], "billing": "nope", "site": "ftp://x",
        "budget": {"amount_minor": 1.5, "currency": "EUR"}, "undefined": 1
    });
    let Err(Error::Validation(errors)) = t.accounts().create(account("Bad", bad)).await else {
        panic!()
    };
    assert_eq!(errors.len(), 11, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.field == "custom_fields.undefined" && e.code == "unknown_field")
    );
    // Patches are checked too, and a null still removes a key.
    let err = t
        .accounts()
        .update(
            a.id,
            AccountPatch {
                custom_fields: json!({"tier": "bronze"}).as_object().cloned(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].field == "custom_fields.tier"),
        "{err:?}"
    );
    let a = t
        .accounts()
        .update(
            a.id,
            AccountPatch {
                custom_fields: json!({"tier": null}).as_object().cloned(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!a.custom_fields.contains_key("tier"));
}

async fn required_default_archived_and_permissions(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let mut region = NewCustomField::new("region", "Region", T::Select);
    region.options = vec!["emea".into(), "amer".into()];
    region.required = true;
    region.default_value = Some(json!("emea"));
    admin
        .custom_fields()
        .define(EntityKind::Account, region)
        .await
        .unwrap();
    let mut code = NewCustomField::new("code", "Code", T::Text);
    code.required = true;
    admin
        .custom_fields()
        .define(EntityKind::Account, code)
        .await
        .unwrap();

    let t = org.user(&crm);
    let err = t
        .accounts()
        .create(account("No code", json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e.len() == 1 && e[0].field == "custom_fields.code"),
        "{err:?}"
    );
    let a = t
        .accounts()
        .create(account("Ok", json!({"code": "X1"})))
        .await
        .unwrap();
    assert_eq!(a.custom_fields["region"], json!("emea"), "default applied");
    let err = t
        .accounts()
        .update(
            a.id,
            AccountPatch {
                custom_fields: json!({"code": null}).as_object().cloned(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].code == "required"),
        "{err:?}"
    );

    // Archived: existing values stay, new values are refused, and it is no longer required.
    admin
        .custom_fields()
        .archive(EntityKind::Account, "code")
        .await
        .unwrap();
    let a = t
        .update_json(a.id, json!({ "city": "Oslo" }))
        .await
        .unwrap();
    assert_eq!(a.custom_fields["code"], json!("X1"));
    let err = t
        .accounts()
        .create(account("New", json!({"code": "X2"})))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].code == "archived"),
        "{err:?}"
    );
    t.accounts()
        .create(account("New", json!({})))
        .await
        .unwrap();

    // Definitions: admins only, unique keys, checked shapes, fixed type.
    let err = t
        .custom_fields()
        .define(EntityKind::Account, NewCustomField::new("x", "X", T::Text))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)));
    let err = admin
        .custom_fields()
        .define(
            EntityKind::Account,
            NewCustomField::new("region", "R", T::Text),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    let err = admin
        .custom_fields()
        .define(
            EntityKind::Account,
            NewCustomField::new("Bad Key", "", T::Select),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e.len() == 3),
        "{err:?}"
    );
    let renamed = admin
        .custom_fields()
        .update(
            EntityKind::Account,
            "region",
            CustomFieldPatch {
                label: Some("Sales region".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (renamed.label.as_str(), renamed.version),
        ("Sales region", 2)
    );
    assert_eq!(
        admin
            .custom_fields()
            .list(EntityKind::Account)
            .await
            .unwrap()
            .len(),
        2
    );
    // Another organization has none of these.
    let other = Org::new(&crm, "Other").await;
    assert!(
        other
            .admin(&crm)
            .custom_fields()
            .list(EntityKind::Account)
            .await
            .unwrap()
            .is_empty()
    );
    other
        .user(&crm)
        .accounts()
        .create(account("Free of them", json!({})))
        .await
        .unwrap();
}

async fn filters_compare_by_type(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    for (key, ty, options) in [
        ("score", T::Number, &[][..]),
        ("renewal", T::Date, &[]),
        ("last_seen", T::Datetime, &[]),
        ("tags", T::MultiSelect, &["a", "b", "c"]),
        ("budget", T::Currency, &[]),
        ("tier", T::Select, &["gold", "silver"]),
    ] {
        define(&crm, &org, EntityKind::Account, key, ty, options).await;
    }
    let t = org.user(&crm);
    let rows = [
        (
            "A",
            json!({"score": 9, "renewal": "2027-01-09", "last_seen": "2027-01-01T09:00:00Z", "tags": ["a"], "budget": {"amount_minor": 900, "currency": "EUR"}, "tier": "gold"}),
        ),
        (
            "B",
            json!({"score": 10, "renewal": "2027-01-10", "last_seen": "2027-01-01T10:00:00+00:00", "tags": ["a", "b"], "budget": {"amount_minor": 1000, "currency": "EUR"}}),
        ),
        (
            "C",
            json!({"score": 100, "renewal": "2026-12-31", "last_seen": "2027-01-01T11:30:00+02:00", "tags": [], "tier": "silver"}),
        ),
    ];
    for (name, cf) in rows {
        t.accounts().create(account(name, cf)).await.unwrap();
    }
    assert_eq!(
        names(&t, "score", Op::Gt, json!(9)).await,
        ["B", "C"],
        "numeric, not text: 10 > 9"
    );
    assert_eq!(names(&t, "score", Op::Lt, json!(10)).await, ["A"]);
    assert_eq!(
        names(&t, "renewal", Op::Gte, json!("2027-01-01")).await,
        ["A", "B"]
    );
    assert_eq!(
        names(&t, "renewal", Op::Eq, json!("2027-01-10")).await,
        ["B"]
    );
    // 11:30+02:00 is 09:30Z: compared as times, not as text.
    assert_eq!(
        names(&t, "last_seen", Op::Lt, json!("2027-01-01T12:00:00+02:00")).await,
        ["A", "C"]
    );
    assert_eq!(
        names(&t, "last_seen", Op::Gt, json!("2027-01-01T09:15:00Z")).await,
        ["B", "C"]
    );
    assert_eq!(
        names(&t, "tags", Op::Eq, json!("b")).await,
        ["B"],
        "has the option"
    );
    assert_eq!(
        names(&t, "tags", Op::In, json!(["b", "a"])).await,
        ["A", "B"]
    );
    assert_eq!(names(&t, "tags", Op::Ne, json!("a")).await, ["C"]);
    assert_eq!(
        names(&t, "budget", Op::Gte, json!(1000)).await,
        ["B"],
        "money compares by amount"
    );
    assert_eq!(names(&t, "budget", Op::IsNull, json!(true)).await, ["C"]);
    assert_eq!(names(&t, "tier", Op::Eq, json!("gold")).await, ["A"]);
    assert_eq!(names(&t, "tier", Op::Ne, json!("gold")).await, ["B", "C"]);
    assert_eq!(names(&t, "tier", Op::StartsWith, json!("SIL")).await, ["C"]);

    for (field, op, value) in [
        ("renewal", Op::Gt, json!("tomorrow")),
        ("score", Op::Eq, json!("9")),
        ("tags", Op::Gt, json!("a")),
        ("budget", Op::Contains, json!("1")),
    ] {
        let q = ListQuery::default().filter(format!("custom_fields.{field}"), op, value);
        assert!(
            matches!(t.accounts().list(&q).await, Err(Error::Validation(_))),
            "{field} {op:?}"
        );
    }
}

crate::on_both_backends!(
    values_are_checked_by_type,
    required_default_archived_and_permissions,
    filters_compare_by_type
);
