//! The constraints entities declare in `record_type!`: checked on every write on both
//! backends, and input PostgreSQL or SQLite cannot take (NUL characters, five-digit years,
//! condition trees of empty groups, amounts past any sum) refused as validation errors.

use chrono::{NaiveDate, TimeZone as _, Utc};
use crm_core::record::{Format, Kind};
use crm_core::sqlx::{self, Connection as _, Executor as _};
use crm_core::{
    Condition, Crm, CustomFieldType, EntityKind, Error, ListQuery, MAX_MINOR, NewAccount,
    NewActivity, NewOpportunity, Op,
};
use serde_json::json;

use crate::harness::{self, CreateJson, Fixtures as _, Org};

/// The field and code of the first validation error, or the error itself.
fn first_problem<T: std::fmt::Debug>(r: crm_core::Result<T>) -> (String, &'static str) {
    match r {
        Err(Error::Validation(errors)) => (errors[0].field.clone(), errors[0].code),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// Unbounded text is how a client fills a database: every free-text column declares its
/// length, or a format that bounds it.
#[test]
fn every_free_text_column_is_bounded() {
    for kind in EntityKind::ALL {
        for c in kind.columns() {
            if c.kind == Kind::Text && c.choices.is_empty() {
                assert!(
                    c.max_length.is_some() || c.format.is_some(),
                    "{}.{} declares no max_length",
                    kind.table(),
                    c.name
                );
            }
        }
    }
    let email = EntityKind::Contact
        .columns()
        .iter()
        .find(|c| c.name == "email");
    assert_eq!(email.and_then(|c| c.format), Some(Format::Email));
}

async fn declared_constraints_are_checked(crm: Crm) {
    let org = Org::new(&crm, "Constraints").await;
    let t = org.user(&crm);

    let long = "x".repeat(201);
    let refused = [
        (
            EntityKind::Account,
            json!({ "name": long }),
            "name",
            "too_long",
        ),
        (
            EntityKind::Account,
            json!({ "name": "  " }),
            "name",
            "required",
        ),
        (
            EntityKind::Contact,
            json!({ "email": "not an email" }),
            "email",
            "invalid_format",
        ),
        (
            EntityKind::Opportunity,
            json!({ "name": "Big", "amount_minor": MAX_MINOR + 1, "currency": "EUR" }),
            "amount_minor",
            "out_of_range",
        ),
        (
            EntityKind::Opportunity,
            json!({ "name": "Big", "amount_minor": 1, "currency": "euro" }),
            "currency",
            "invalid_format",
        ),
        (
            EntityKind::Account,
            json!({ "name": "Negative", "employee_count": -1 }),
            "employee_count",
            "out_of_range",
        ),
    ];
    for (kind, input, field, code) in refused {
        let problem = first_problem(kind.visit(CreateJson(&t, input.clone())).await);
        assert_eq!(problem, (field.to_owned(), code), "{kind:?} {input}");
    }

    // The cap itself is fine, and the owner column is what `owner()` reads.
    let ok = t
        .opportunities()
        .create(NewOpportunity {
            name: "Cap".into(),
            amount_minor: Some(MAX_MINOR),
            currency: Some("EUR".into()),
            owner_id: Some(org.user),
            ..Default::default()
        })
        .await
        .unwrap();
    use crm_core::Entity as _;
    assert_eq!(ok.fields.owner(), Some(org.user));
    assert_eq!(ok.fields.amount().map(|m| m.minor()), Some(MAX_MINOR));
}

/// What PostgreSQL cannot store (a NUL character) or either backend cannot order faithfully
/// (years outside 1–9999) is a 422, never a database error.
async fn unstorable_input_is_a_validation_error(crm: Crm) {
    let org = Org::new(&crm, "Unstorable").await;
    let t = org.user(&crm);
    let fields = [
        ("tier", CustomFieldType::Text),
        ("since", CustomFieldType::Date),
    ];
    org.define_fields(&crm, EntityKind::Account, &fields).await;

    let r = t
        .accounts()
        .create(NewAccount {
            name: "Nul\0l".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(first_problem(r), ("name".into(), "invalid_format"));

    let mut custom = NewAccount {
        name: "Custom".into(),
        ..Default::default()
    };
    custom.custom_fields.insert("tier".into(), json!("gold\0"));
    let r = t.accounts().create(custom).await;
    assert_eq!(
        first_problem(r),
        ("custom_fields.tier".into(), "invalid_format")
    );

    for since in ["0000-12-31", "10000-01-01"] {
        let mut custom = NewAccount {
            name: "Custom".into(),
            ..Default::default()
        };
        custom.custom_fields.insert("since".into(), json!(since));
        let r = t.accounts().create(custom).await;
        assert_eq!(first_problem(r).0, "custom_fields.since", "{since}");
    }

    for year in [0, 10_000] {
        let r = t
            .opportunities()
            .create(NewOpportunity {
                name: "When".into(),
                expected_close_date: NaiveDate::from_ymd_opt(year, 1, 1),
                ..Default::default()
            })
            .await;
        assert_eq!(
            first_problem(r),
            ("expected_close_date".into(), "out_of_range"),
            "{year}"
        );
    }
    let account = t.account("Timeline").await;
    let r = t
        .activities()
        .create(NewActivity {
            subject: "Call".into(),
            related_entity: EntityKind::Account,
            related_id: account.id.uuid(),
            occurred_at: Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).single(),
            ..Default::default()
        })
        .await;
    assert_eq!(first_problem(r), ("occurred_at".into(), "out_of_range"));

    for q in [
        ListQuery::default().filter("name", Op::Eq, "a\0"),
        ListQuery::default().filter("name", Op::Contains, "\0"),
        ListQuery::default().filter("name", Op::In, json!(["a", "\0"])),
        ListQuery::default().filter("custom_fields.tier", Op::Eq, "\0"),
        ListQuery::default().filter("created_at", Op::Lt, "10000-01-01T00:00:00Z"),
    ] {
        let r = t.accounts().list(&q).await;
        assert!(
            matches!(r, Err(Error::Validation(_))),
            "{q:?} answered {r:?}"
        );
    }
}

/// Every node of a condition tree counts toward the filter cap, empty groups too (SQLite
/// fails on expression trees that large; they also cost time to compile).
async fn empty_groups_count_toward_the_filter_cap(crm: Crm) {
    let org = Org::new(&crm, "Groups").await;
    let t = org.user(&crm);
    let many = Condition::or((0..1_000).map(|_| Condition::and(vec![])).collect());
    let r = t
        .accounts()
        .list(&ListQuery::default().condition(many))
        .await;
    assert_eq!(first_problem(r), ("condition".into(), "too_many"));
    let few = Condition::or((0..10).map(|_| Condition::and(vec![])).collect());
    t.accounts()
        .list(&ListQuery::default().condition(few))
        .await
        .unwrap();
}

crate::on_both_backends!(
    declared_constraints_are_checked,
    unstorable_input_is_a_validation_error,
    empty_groups_count_toward_the_filter_cap,
);

/// Amounts stored before the cap existed (or by hand) still sum: the pipeline summary adds
/// them in 128 bits and never fails for the whole organization.
async fn summary_survives_sums_past_64_bits(crm: Crm, raw: impl AsyncFnOnce(String)) {
    let org = Org::new(&crm, "Sums").await;
    let t = org.user(&crm);
    for name in ["A", "B", "C"] {
        t.opportunities()
            .create(NewOpportunity {
                name: name.into(),
                amount_minor: Some(MAX_MINOR),
                currency: Some("EUR".into()),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    raw(format!(
        "update opportunities set amount_minor = {} where name <> 'C'",
        i64::MAX
    ))
    .await;
    let pipeline = t.pipelines().list().await.unwrap().remove(0);
    let summary = t.pipelines().summary(pipeline.id).await.unwrap();
    let first = &summary.stages[0];
    assert_eq!(first.count, 3);
    assert_eq!(
        first.amounts[0].amount_minor,
        i64::MAX,
        "saturates, never fails"
    );
}

#[tokio::test]
async fn sqlite_summary_survives_sums_past_64_bits() {
    let path = std::env::temp_dir().join(format!("crm-sums-{}.db", uuid::Uuid::now_v7()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let crm = Crm::connect(&url).await.unwrap();
    summary_survives_sums_past_64_bits(crm, async |sql| {
        let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
        raw.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    })
    .await;
    std::fs::remove_file(&path).ok();
}

#[tokio::test]
async fn postgres_summary_survives_sums_past_64_bits() {
    let Some((crm, url)) = harness::postgres_with_url().await else {
        return;
    };
    summary_survives_sums_past_64_bits(crm, async |sql| {
        let mut raw = sqlx::PgConnection::connect(&url).await.unwrap();
        raw.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    })
    .await;
}
