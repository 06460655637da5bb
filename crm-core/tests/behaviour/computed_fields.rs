//! Computed custom fields: formulas over a record's own fields and roll-ups of related records,
//! materialized in the write's transaction, readable and filterable like stored fields.

use std::time::{Duration, Instant};

use crm_core::sqlx::{self, Connection as _, Executor as _};
use crm_core::{
    Activity, Computed, Condition, CustomFieldPatch, CustomFieldType as T, Direction, EntityKind,
    Error, FormulaSpec, ListQuery, MAX_FORMULA_DEPTH, MAX_FORMULA_LENGTH, NewCustomField,
    NewOpportunity, Op, Opportunity, Record, RollupFunction, RollupSpec, Tenant,
};
use serde_json::{Value, json};

use crate::harness::{Fixtures as _, Org, define};

fn formula(key: &str, ty: T, expression: &str) -> NewCustomField {
    let mut f = NewCustomField::new(key, key, ty);
    f.computed = Some(Computed::Formula(FormulaSpec {
        expression: expression.into(),
    }));
    f
}

/// A roll-up over opportunities through `account_id` (shared with `rollup_concurrency`).
pub(crate) fn rollup(
    key: &str,
    ty: T,
    function: RollupFunction,
    field: Option<&str>,
    filter: Option<Condition>,
) -> NewCustomField {
    let mut f = NewCustomField::new(key, key, ty);
    f.computed = Some(Computed::Rollup(RollupSpec {
        entity: "opportunity".into(),
        link: "account_id".into(),
        function,
        field: field.map(Into::into),
        filter,
    }));
    f
}

/// "Open opportunities": neither won nor lost.
fn open() -> Condition {
    Condition::filter("status", Op::Eq, "open")
}

async fn deal(t: &Tenant, name: &str, account: Option<Value>, amount: i64) -> Record<Opportunity> {
    t.create_json(json!({
        "name": name, "account_id": account, "amount_minor": amount, "currency": "EUR",
        "expected_close_date": "2027-01-31"
    }))
    .await
    .unwrap()
}

fn cf(custom: &serde_json::Map<String, Value>, key: &str) -> Value {
    custom.get(key).cloned().unwrap_or(Value::Null)
}

async fn formulas_follow_the_record(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    define(
        &crm,
        &org,
        EntityKind::Opportunity,
        "divisor",
        T::Number,
        &[],
    )
    .await;
    for f in [
        formula("major", T::Number, "amount_minor / 100"),
        formula("label", T::Text, "upper(name) & ' (' & currency & ')'"),
        formula(
            "days_left",
            T::Number,
            "days_between(date('2027-01-01'), expected_close_date)",
        ),
        formula(
            "size",
            T::Text,
            "if(amount_minor >= 100000, 'big', 'small')",
        ),
        formula(
            "share",
            T::Number,
            "round(amount_minor / custom_fields.divisor, 2)",
        ),
        formula(
            "big",
            T::Boolean,
            "amount_minor > 1000 and not (currency = 'USD')",
        ),
    ] {
        admin
            .custom_fields()
            .define(EntityKind::Opportunity, f)
            .await
            .unwrap();
    }
    let t = org.user(&crm);
    let o: Record<Opportunity> = t
        .create_json(json!({
            "name": "Deal", "amount_minor": 250000, "currency": "EUR",
            "expected_close_date": "2027-01-31", "custom_fields": {"divisor": 0}
        }))
        .await
        .unwrap();
    let c = &o.custom_fields;
    assert_eq!(cf(c, "major"), json!(2500));
    assert_eq!(cf(c, "label"), json!("DEAL (EUR)"));
    assert_eq!(cf(c, "days_left"), json!(30));
    assert_eq!(cf(c, "size"), json!("big"));
    assert_eq!(cf(c, "big"), json!(true));
    assert!(!c.contains_key("share"), "division by zero is empty: {c:?}");

    // Recomputed on update, from the patched fields and stored custom fields.
    let o: Record<Opportunity> = t
        .update_json(
            o.id,
            json!({"amount_minor": 3000, "custom_fields": {"divisor": 7}}),
        )
        .await
        .unwrap();
    let c = &o.custom_fields;
    assert_eq!(cf(c, "major"), json!(30));
    assert_eq!(cf(c, "size"), json!("small"));
    assert_eq!(cf(c, "share"), json!(428.57));
    // The event carries the derived change with the written one.
    let events = t.events().for_record(o.id, 1, None).await.unwrap();
    assert_eq!(
        events.data[0].changes["custom_fields.major"],
        json!({"before": 2500, "after": 30})
    );

    // Empty values propagate: no amount, no amount-derived values.
    let o: Record<Opportunity> = t
        .update_json(o.id, json!({"amount_minor": null, "currency": null}))
        .await
        .unwrap();
    for key in ["major", "size", "share", "big", "label"] {
        assert!(
            !o.custom_fields.contains_key(key),
            "{key}: {:?}",
            o.custom_fields
        );
    }
    assert_eq!(cf(&o.custom_fields, "days_left"), json!(30));

    // Nobody writes a computed field, on create or update.
    let err = t
        .create_json::<Opportunity>(json!({"name": "X", "custom_fields": {"major": 1}}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].field == "custom_fields.major" && e[0].code == "computed_field"),
        "{err:?}"
    );
    let err = t
        .update_json(o.id, json!({"custom_fields": {"days_left": null}}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].code == "computed_field"),
        "{err:?}"
    );

    // Filterable like a stored field.
    deal(&t, "Huge", None, 900000).await;
    let q = ListQuery::default().filter("custom_fields.size", Op::Eq, "big");
    let page = t.opportunities().list(&q).await.unwrap();
    let names: Vec<_> = page.data.iter().map(|o| o.fields.name.as_str()).collect();
    assert_eq!(names, ["Huge"]);
    let q = ListQuery::default().filter("custom_fields.major", Op::Gt, 5000);
    assert_eq!(t.opportunities().list(&q).await.unwrap().data.len(), 1);
}

async fn rollups_follow_every_write(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    for f in [
        rollup(
            "open_count",
            T::Number,
            RollupFunction::Count,
            None,
            Some(open()),
        ),
        rollup(
            "open_amount",
            T::Number,
            RollupFunction::Sum,
            Some("amount_minor"),
            Some(open()),
        ),
        rollup(
            "biggest",
            T::Number,
            RollupFunction::Max,
            Some("amount_minor"),
            None,
        ),
        rollup(
            "first_close",
            T::Date,
            RollupFunction::Min,
            Some("expected_close_date"),
            None,
        ),
    ] {
        admin
            .custom_fields()
            .define(EntityKind::Account, f)
            .await
            .unwrap();
    }
    let t = org.user(&crm);
    let a = t.account("Globex").await;
    let b = t.account("Initech").await;
    assert_eq!(cf(&a.custom_fields, "open_count"), json!(0), "backfilled");
    let ida = json!(a.id);
    let idb = json!(b.id);
    let get = |id| {
        let t = &t;
        async move { t.accounts().get(id).await.unwrap() }
    };

    let o1 = deal(&t, "One", Some(ida.clone()), 1000).await;
    let o2 = deal(&t, "Two", Some(ida.clone()), 3000).await;
    let acc = get(a.id).await;
    assert_eq!(
        (
            cf(&acc.custom_fields, "open_count"),
            cf(&acc.custom_fields, "open_amount"),
            cf(&acc.custom_fields, "biggest"),
            cf(&acc.custom_fields, "first_close"),
        ),
        (json!(2), json!(4000), json!(3000), json!("2027-01-31"))
    );
    assert_eq!(
        (acc.version, acc.updated_at),
        (a.version, a.updated_at),
        "derived: no version bump"
    );

    // An amount change; a stage change out of the filter.
    t.update_json(o1.id, json!({"amount_minor": 2000}))
        .await
        .unwrap();
    t.opportunities().close_won(o2.id).await.unwrap();
    let acc = get(a.id).await;
    assert_eq!(cf(&acc.custom_fields, "open_count"), json!(1));
    assert_eq!(cf(&acc.custom_fields, "open_amount"), json!(2000));
    assert_eq!(cf(&acc.custom_fields, "biggest"), json!(3000), "no filter");

    // Re-parenting refreshes both accounts.
    t.update_json(o1.id, json!({"account_id": idb}))
        .await
        .unwrap();
    let (acc, bcc) = (get(a.id).await, get(b.id).await);
    assert_eq!(cf(&acc.custom_fields, "open_count"), json!(0));
    assert_eq!(cf(&acc.custom_fields, "open_amount"), json!(0));
    assert_eq!(cf(&bcc.custom_fields, "open_count"), json!(1));
    assert_eq!(cf(&bcc.custom_fields, "open_amount"), json!(2000));

    // Soft delete, restore, purge.
    t.opportunities().delete(o1.id).await.unwrap();
    assert_eq!(cf(&get(b.id).await.custom_fields, "open_count"), json!(0));
    assert!(
        !get(b.id).await.custom_fields.contains_key("biggest"),
        "max of none is empty"
    );
    t.opportunities().restore(o1.id).await.unwrap();
    assert_eq!(cf(&get(b.id).await.custom_fields, "open_count"), json!(1));
    admin.opportunities().purge(o1.id).await.unwrap();
    assert_eq!(cf(&get(b.id).await.custom_fields, "open_count"), json!(0));

    // Batches and imports.
    let batch: Vec<NewOpportunity> = (0..3)
        .map(|i| NewOpportunity {
            name: format!("Batch {i}"),
            account_id: Some(b.id),
            amount_minor: Some(100),
            currency: Some("EUR".into()),
            ..Default::default()
        })
        .collect();
    t.opportunities().create_many(batch.clone()).await.unwrap();
    t.opportunities().import(batch).await.unwrap();
    let bcc = get(b.id).await;
    assert_eq!(cf(&bcc.custom_fields, "open_count"), json!(6));
    assert_eq!(cf(&bcc.custom_fields, "open_amount"), json!(600));

    // Filterable, and the parent's own writes keep the value.
    let q = ListQuery::default().filter("custom_fields.open_count", Op::Gte, 1);
    let page = t.accounts().list(&q).await.unwrap();
    assert_eq!(page.data.iter().map(|a| a.id).collect::<Vec<_>>(), [b.id]);
    let bcc = t
        .update_json(b.id, json!({"name": "Initech SA"}))
        .await
        .unwrap();
    assert_eq!(cf(&bcc.custom_fields, "open_count"), json!(6));
}

async fn lists_sort_on_computed_fields(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    admin
        .custom_fields()
        .define(
            EntityKind::Account,
            rollup("deals", T::Number, RollupFunction::Count, None, None),
        )
        .await
        .unwrap();
    admin
        .custom_fields()
        .define(
            EntityKind::Opportunity,
            formula("tag", T::Text, "lower(name)"),
        )
        .await
        .unwrap();
    let t = org.user(&crm);
    let mut ids = Vec::new();
    for (name, n) in [("A", 2), ("B", 0), ("C", 3), ("D", 1)] {
        let a = t.account(name).await;
        for i in 0..n {
            deal(&t, &format!("{name}{i}"), Some(json!(a.id)), 10).await;
        }
        ids.push(a.id);
    }
    // Descending by the roll-up, two per page: the cursor continues on the computed value.
    let mut names = Vec::new();
    let mut cursor = None;
    loop {
        let q = ListQuery::default()
            .sort("custom_fields.deals", Direction::Desc)
            .limit(2)
            .cursor(cursor);
        let page = t.accounts().list(&q).await.unwrap();
        names.extend(page.data.iter().map(|a| a.fields.name.clone()));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(names, ["C", "A", "D", "B"]);
    let q = ListQuery::default()
        .sort("custom_fields.tag", Direction::Asc)
        .limit(3);
    let page = t.opportunities().list(&q).await.unwrap();
    let tags: Vec<_> = page
        .data
        .iter()
        .map(|o| cf(&o.custom_fields, "tag"))
        .collect();
    assert_eq!(tags, [json!("a0"), json!("a1"), json!("c0")]);
}

async fn bad_definitions_are_refused(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    define(&crm, &org, EntityKind::Opportunity, "note", T::Text, &[]).await;
    admin
        .custom_fields()
        .define(
            EntityKind::Opportunity,
            formula("twice", T::Number, "amount_minor * 2"),
        )
        .await
        .unwrap();
    let cases: Vec<(EntityKind, NewCustomField, &str, &str)> = vec![
        (
            EntityKind::Opportunity,
            formula("f", T::Number, "nope + 1"),
            "computed.formula.expression",
            "`nope` is not a field",
        ),
        (
            EntityKind::Opportunity,
            formula("f", T::Number, "name * 2"),
            "computed.formula.expression",
            "takes a number, not a text",
        ),
        (
            EntityKind::Opportunity,
            formula("f", T::Number, "name & 'x'"),
            "field_type",
            "yields a text",
        ),
        (
            EntityKind::Opportunity,
            formula("f", T::Number, "custom_fields.twice + 1"),
            "computed.formula.expression",
            "computed",
        ),
        (
            EntityKind::Opportunity,
            formula("f", T::Text, "(name"),
            "computed.formula.expression",
            "expected `)`",
        ),
        // PostgreSQL's jsonb cannot hold a NUL, so the definition could not be stored.
        (
            EntityKind::Opportunity,
            formula("f", T::Text, "name & 'a\u{0}b'"),
            "computed.formula.expression",
            "NUL",
        ),
        (
            EntityKind::Account,
            rollup(
                "r",
                T::Number,
                RollupFunction::Count,
                None,
                Some(Condition::filter("nope", Op::Eq, 1)),
            ),
            "computed.rollup.filter.field",
            "not a field of opportunity",
        ),
        (
            EntityKind::Account,
            rollup("r", T::Number, RollupFunction::Sum, None, None),
            "computed.rollup.field",
            "needs a field",
        ),
        (
            EntityKind::Account,
            rollup(
                "r",
                T::Number,
                RollupFunction::Count,
                Some("amount_minor"),
                None,
            ),
            "computed.rollup.field",
            "takes no field",
        ),
        (
            EntityKind::Account,
            rollup("r", T::Number, RollupFunction::Sum, Some("name"), None),
            "computed.rollup.field",
            "sum takes numbers",
        ),
        (
            EntityKind::Account,
            rollup("r", T::Text, RollupFunction::Count, None, None),
            "field_type",
            "yields a number",
        ),
        (
            EntityKind::Contact,
            rollup("r", T::Number, RollupFunction::Count, None, None),
            "computed.rollup.link",
            "not a link of opportunity to contact",
        ),
    ];
    for (kind, def, field, says) in cases {
        let key = def.key.clone();
        let err = admin.custom_fields().define(kind, def).await.unwrap_err();
        let Error::Validation(errors) = &err else {
            panic!("{key}: {err:?}")
        };
        assert!(
            errors
                .iter()
                .any(|e| e.field.starts_with(field) && e.message.contains(says)),
            "{field} / {says}: {errors:?}"
        );
    }
    let mut required = formula("f", T::Number, "1");
    required.required = true;
    required.default_value = Some(json!(1));
    let Error::Validation(errors) = admin
        .custom_fields()
        .define(EntityKind::Opportunity, required)
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(errors.len(), 2, "{errors:?}");
    // A stored field stays stored.
    let err = admin
        .custom_fields()
        .update(
            EntityKind::Opportunity,
            "note",
            CustomFieldPatch {
                computed: Some(Computed::Formula(FormulaSpec {
                    expression: "name".into(),
                })),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation(_)), "{err:?}");
}

async fn definitions_backfill_and_archiving_stops_maintenance(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let t = org.user(&crm);
    let a = t.account("Globex").await;
    let o = deal(&t, "Old", Some(json!(a.id)), 500).await;
    admin
        .custom_fields()
        .define(
            EntityKind::Opportunity,
            formula("major", T::Number, "amount_minor / 100"),
        )
        .await
        .unwrap();
    admin
        .custom_fields()
        .define(
            EntityKind::Account,
            rollup(
                "total",
                T::Number,
                RollupFunction::Sum,
                Some("amount_minor"),
                None,
            ),
        )
        .await
        .unwrap();
    let got: Record<Opportunity> = t.opportunities().get(o.id).await.unwrap();
    assert_eq!(cf(&got.custom_fields, "major"), json!(5));
    assert_eq!(got.version, o.version, "a backfill bumps no version");
    assert_eq!(
        cf(
            &t.accounts().get(a.id).await.unwrap().custom_fields,
            "total"
        ),
        json!(500)
    );

    // A new expression, a new filter: recomputed at once.
    let patch = |computed| CustomFieldPatch {
        computed: Some(computed),
        ..Default::default()
    };
    admin
        .custom_fields()
        .update(
            EntityKind::Opportunity,
            "major",
            patch(Computed::Formula(FormulaSpec {
                expression: "amount_minor / 10".into(),
            })),
        )
        .await
        .unwrap();
    let got: Record<Opportunity> = t.opportunities().get(o.id).await.unwrap();
    assert_eq!(cf(&got.custom_fields, "major"), json!(50));
    admin
        .custom_fields()
        .update(
            EntityKind::Account,
            "total",
            patch(Computed::Rollup(RollupSpec {
                entity: "opportunity".into(),
                link: "account_id".into(),
                function: RollupFunction::Sum,
                field: Some("amount_minor".into()),
                filter: Some(Condition::filter("amount_minor", Op::Gt, 1000)),
            })),
        )
        .await
        .unwrap();
    assert_eq!(
        cf(
            &t.accounts().get(a.id).await.unwrap().custom_fields,
            "total"
        ),
        json!(0)
    );

    // Archived: the values stay and are no longer maintained.
    admin
        .custom_fields()
        .archive(EntityKind::Opportunity, "major")
        .await
        .unwrap();
    admin
        .custom_fields()
        .archive(EntityKind::Account, "total")
        .await
        .unwrap();
    let got: Record<Opportunity> = t
        .update_json(o.id, json!({"amount_minor": 5000}))
        .await
        .unwrap();
    assert_eq!(cf(&got.custom_fields, "major"), json!(50));
    assert_eq!(
        cf(
            &t.accounts().get(a.id).await.unwrap().custom_fields,
            "total"
        ),
        json!(0)
    );
}

async fn rollups_stay_in_their_organization(crm: crm_core::Crm) {
    let acme = Org::new(&crm, "Acme").await;
    let other = Org::new(&crm, "Other").await;
    for org in [&acme, &other] {
        org.admin(&crm)
            .custom_fields()
            .define(
                EntityKind::Account,
                rollup("deals", T::Number, RollupFunction::Count, None, None),
            )
            .await
            .unwrap();
    }
    let (ta, to) = (acme.user(&crm), other.user(&crm));
    let a = ta.account("Globex").await;
    let b = to.account("Globex").await;
    deal(&ta, "Mine", Some(json!(a.id)), 1).await;
    for i in 0..3 {
        deal(&to, &format!("Theirs {i}"), Some(json!(b.id)), 1).await;
    }
    // A link to another organization's account does not resolve, so counts nothing.
    let err = ta
        .create_json::<Opportunity>(json!({"name": "Sneaky", "account_id": b.id}))
        .await
        .unwrap_err();
    crate::harness::assert_not_found(&err, "account");
    // A backfill in one organization leaves the other's alone.
    acme.admin(&crm)
        .custom_fields()
        .update(
            EntityKind::Account,
            "deals",
            CustomFieldPatch {
                computed: Some(Computed::Rollup(RollupSpec {
                    entity: "opportunity".into(),
                    link: "account_id".into(),
                    function: RollupFunction::Count,
                    field: None,
                    filter: Some(Condition::filter("name", Op::Eq, "nothing")),
                })),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        cf(
            &ta.accounts().get(a.id).await.unwrap().custom_fields,
            "deals"
        ),
        json!(0)
    );
    assert_eq!(
        cf(
            &to.accounts().get(b.id).await.unwrap().custom_fields,
            "deals"
        ),
        json!(3)
    );
}

async fn erasure_refreshes_rollups(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let mut people = NewCustomField::new("people", "People", T::Number);
    people.computed = Some(Computed::Rollup(RollupSpec {
        entity: "contact".into(),
        link: "account_id".into(),
        function: RollupFunction::Count,
        field: None,
        filter: None,
    }));
    admin
        .custom_fields()
        .define(EntityKind::Account, people)
        .await
        .unwrap();
    let a = admin.account("Globex").await;
    let mut contacts = Vec::new();
    for name in ["Ada", "Bob"] {
        let c: Record<crm_core::Contact> = admin
            .create_json(json!({"last_name": name, "account_id": a.id}))
            .await
            .unwrap();
        contacts.push(c.id);
    }
    assert_eq!(
        cf(
            &admin.accounts().get(a.id).await.unwrap().custom_fields,
            "people"
        ),
        json!(2)
    );
    admin.contacts().erase(contacts[0]).await.unwrap();
    assert_eq!(
        cf(
            &admin.accounts().get(a.id).await.unwrap().custom_fields,
            "people"
        ),
        json!(1)
    );
}

/// A merge re-points the absorbed account's opportunities set-based, outside the write path:
/// the roll-ups of both accounts still follow, in the merge's transaction.
async fn merges_refresh_rollups(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    admin
        .custom_fields()
        .define(
            EntityKind::Account,
            rollup(
                "open_total",
                T::Number,
                RollupFunction::Sum,
                Some("amount_minor"),
                Some(open()),
            ),
        )
        .await
        .unwrap();
    let keep = admin.account("Globex").await;
    let dup = admin.account("Globex Inc").await;
    deal(&admin, "K", Some(json!(keep.id)), 100).await;
    deal(&admin, "D1", Some(json!(dup.id)), 20).await;
    deal(&admin, "D2", Some(json!(dup.id)), 3).await;
    assert_eq!(
        cf(
            &admin.accounts().get(dup.id).await.unwrap().custom_fields,
            "open_total"
        ),
        json!(23)
    );

    let merged = admin
        .accounts()
        .merge(
            keep.id,
            crm_core::Merge {
                absorb: vec![dup.id.uuid()],
                fields: Default::default(),
            },
        )
        .await
        .unwrap();
    assert_eq!(cf(&merged.custom_fields, "open_total"), json!(123));
    // The absorbed account, in the trash, keeps nothing.
    let gone = admin
        .accounts()
        .get_including_deleted(dup.id)
        .await
        .unwrap();
    assert_eq!(cf(&gone.custom_fields, "open_total"), json!(0));
}

/// `terms` copies of `term` joined by `op`: a chain as deep as it is long.
fn chain(term: &str, op: &str, terms: usize) -> String {
    vec![term; terms].join(op)
}

/// A formula's evaluation recurses as deep as its tree: a chain `1+1+…` of 600 terms is short
/// enough (1,199 characters) but deep enough to overflow the stack of the write that evaluates
/// it, and with it the process. It is refused when defined, whatever the shape of its depth.
async fn formula_depth_is_bounded(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let fields = admin.custom_fields();
    let deep = chain("1", "+", 600);
    assert!(deep.len() < MAX_FORMULA_LENGTH);
    let around = |open: &str, inner: &str| {
        let close = ")".repeat(MAX_FORMULA_DEPTH);
        format!("{}{inner}{close}", open.repeat(MAX_FORMULA_DEPTH))
    };
    for (key, ty, expression) in [
        ("deep", T::Number, deep),
        ("past", T::Number, chain("1", "+", MAX_FORMULA_DEPTH + 1)),
        ("nested", T::Number, around("(", "1")),
        ("calls", T::Text, around("lower(", "'x'")),
    ] {
        let err = fields
            .define(EntityKind::Account, formula(key, ty, &expression))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Validation(e) if e[0].field == "computed.formula.expression"
                && e[0].message.contains("nests at most")),
            "{key}: {err:?}"
        );
    }
    // The deepest accepted chain is evaluated on every write.
    fields
        .define(
            EntityKind::Account,
            formula("deepest", T::Number, &chain("1", "+", MAX_FORMULA_DEPTH)),
        )
        .await
        .unwrap();
    let a = org.user(&crm).account("Globex").await;
    assert_eq!(cf(&a.custom_fields, "deepest"), json!(MAX_FORMULA_DEPTH));
    assert!(!a.custom_fields.contains_key("deep"));
}

/// A formula stored before its depth was bounded (or written by hand) is refused when the
/// definitions load, with a warning: the write goes on without it, and the process lives.
async fn a_stored_deep_formula_cannot_crash_a_write(
    crm: crm_core::Crm,
    raw: impl AsyncFnOnce(String),
) {
    let org = Org::new(&crm, "Acme").await;
    org.admin(&crm)
        .custom_fields()
        .define(EntityKind::Account, formula("deep", T::Number, "1"))
        .await
        .unwrap();
    let computed = json!({"formula": {"expression": chain("1", "+", 600)}});
    raw(format!(
        "update custom_field_definitions set computed = '{computed}' where key = 'deep'"
    ))
    .await;
    let a = org.user(&crm).account("Globex").await;
    assert!(
        !a.custom_fields.contains_key("deep"),
        "{:?}",
        a.custom_fields
    );
}

#[tokio::test]
async fn sqlite_a_stored_deep_formula_cannot_crash_a_write() {
    let path = std::env::temp_dir().join(format!("crm-deep-{}.db", uuid::Uuid::now_v7()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let crm = crm_core::Crm::connect(&url).await.unwrap();
    a_stored_deep_formula_cannot_crash_a_write(crm, async |sql| {
        let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
        raw.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    })
    .await;
    std::fs::remove_file(&path).ok();
}

#[tokio::test]
async fn postgres_a_stored_deep_formula_cannot_crash_a_write() {
    let Some((crm, url)) = crate::harness::postgres_with_url().await else {
        return;
    };
    a_stored_deep_formula_cannot_crash_a_write(crm, async |sql| {
        let mut raw = sqlx::PgConnection::connect(&url).await.unwrap();
        raw.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    })
    .await;
}

/// Text a formula builds is capped at the longest text a field holds: past it the value is
/// empty, so a write costs milliseconds, not seconds, whatever the formula makes of a long
/// body (before the cap, each `&` copied all it had built: 100,000-character bodies joined in
/// chains took seconds per write, and a write of another organization waited for the CPU).
async fn formula_text_is_bounded(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let fields = admin.custom_fields();
    let joined = chain("body", " & ", MAX_FORMULA_DEPTH - 1);
    let heavy = format!("concat({joined}, {joined}, {joined}, {joined})");
    assert!(heavy.len() <= MAX_FORMULA_LENGTH);
    let mut defs = vec![
        formula("doubled", T::Number, "len(body & body)"),
        formula("shouted", T::Text, "upper(body)"),
        formula("chars", T::Number, "len(body)"),
        formula("fallback", T::Text, "coalesce(body & body, 'too long')"),
    ];
    defs.extend((0..4).map(|i| formula(&format!("heavy_{i}"), T::Text, &heavy)));
    for def in defs {
        fields.define(EntityKind::Activity, def).await.unwrap();
    }
    let t = org.user(&crm);
    let a = t.account("Globex").await;
    let started = Instant::now();
    let note: Record<Activity> = t
        .create_json(json!({
            "subject": "Call notes", "body": "é".repeat(100_000),
            "related_entity": "account", "related_id": a.id
        }))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "a write took {took:?}");
    let c = &note.custom_fields;
    // Reading a long field is fine; building a text past the cap is empty.
    assert_eq!(cf(c, "chars"), json!(100_000));
    assert_eq!(cf(c, "fallback"), json!("too long"));
    for key in ["doubled", "shouted", "heavy_0", "heavy_3"] {
        assert!(!c.contains_key(key), "{key}: {c:?}");
    }
    // Under the cap, the same formulas have their values.
    let note: Record<Activity> = t
        .update_json(note.id, json!({"body": "é".repeat(10)}))
        .await
        .unwrap();
    let c = &note.custom_fields;
    assert_eq!(cf(c, "doubled"), json!(20));
    assert_eq!(cf(c, "shouted"), json!("É".repeat(10)));
    assert_eq!(cf(c, "fallback"), json!("é".repeat(20)));
    assert_eq!(
        cf(c, "heavy_0").as_str().map(|s| s.chars().count()),
        Some(10 * 4 * (MAX_FORMULA_DEPTH - 1))
    );
}

crate::on_both_backends!(
    formula_depth_is_bounded,
    formula_text_is_bounded,
    merges_refresh_rollups,
    erasure_refreshes_rollups,
    formulas_follow_the_record,
    rollups_follow_every_write,
    lists_sort_on_computed_fields,
    bad_definitions_are_refused,
    definitions_backfill_and_archiving_stops_maintenance,
    rollups_stay_in_their_organization,
    rollup_sums_saturate_at_the_64_bit_range,
);

/// A sum past the 64-bit range saturates (as the pipeline summary's does) instead of failing
/// every write of the parent's children (SQLite: `integer overflow`), and agrees on both
/// backends; the true sum is exact again once it fits.
async fn rollup_sums_saturate_at_the_64_bit_range(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let weight = NewCustomField::new("weight", "Weight", T::Number);
    let weights = rollup(
        "weights",
        T::Number,
        RollupFunction::Sum,
        Some("custom_fields.weight"),
        None,
    );
    for (kind, f) in [
        (EntityKind::Opportunity, weight),
        (EntityKind::Account, weights),
    ] {
        admin.custom_fields().define(kind, f).await.unwrap();
    }
    let t = org.user(&crm);
    let weigh = |account: &Record<crm_core::Account>, weight: Value| {
        let (t, account) = (&t, json!(account.id));
        async move {
            t.create_json::<Opportunity>(json!({
                "name": "Deal", "account_id": account, "custom_fields": { "weight": weight }
            }))
            .await
            .map(|_| ())
        }
    };
    let sum = |account: &Record<crm_core::Account>| {
        let (t, id) = (&t, account.id);
        async move {
            cf(
                &t.accounts().get(id).await.unwrap().custom_fields,
                "weights",
            )
        }
    };
    let big = 9_000_000_000_000_000_000_i64;

    let up = t.account("Up").await;
    for (weight, expected) in [
        (big, json!(big)),
        (big, json!(i64::MAX)),
        (big, json!(i64::MAX)),
        (-big, json!(i64::MAX)),
        (-big, json!(big)),
    ] {
        weigh(&up, json!(weight)).await.unwrap();
        assert_eq!(sum(&up).await, expected, "after {weight}");
    }
    let down = t.account("Down").await;
    for _ in 0..2 {
        weigh(&down, json!(-big)).await.unwrap();
    }
    assert_eq!(sum(&down).await, json!(i64::MIN));
    // A fraction among them: a float past the range saturates too.
    let mixed = t.account("Mixed").await;
    weigh(&mixed, json!(1.5)).await.unwrap();
    weigh(&mixed, json!(2)).await.unwrap();
    assert_eq!(sum(&mixed).await.as_f64(), Some(3.5));
    weigh(&mixed, json!(1e30)).await.unwrap();
    assert_eq!(sum(&mixed).await, json!(i64::MAX));
}
