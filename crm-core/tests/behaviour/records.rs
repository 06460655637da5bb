//! Create, read, patch, versions, soft delete, restore, purge, custom fields.

use crm_core::{AccountPatch, CustomFieldType, EntityKind, Error, NewAccount, NewContact};
use serde_json::json;

use crate::harness::{Fixtures as _, Org, define};

async fn crud_and_audit_columns(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.user(&crm);

    let created = t
        .accounts()
        .create(NewAccount {
            name: "Globex".into(),
            domain: Some("globex.com".into()),
            employee_count: Some(250),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.organization_id, org.id);
    assert_eq!(created.created_by, Some(org.user.uuid()));
    assert_eq!(created.updated_by, Some(org.user.uuid()));
    assert!(!created.is_deleted);
    assert_eq!(created.created_at, created.updated_at);

    let fetched = t.accounts().get(created.id).await.unwrap();
    assert_eq!(
        fetched, created,
        "what create returns is what get reads back"
    );

    let patch = AccountPatch {
        industry: Some(Some("Energy".into())),
        domain: Some(None),
        ..Default::default()
    };
    let updated = org
        .admin(&crm)
        .accounts()
        .update(created.id, patch)
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.industry.as_deref(), Some("Energy"));
    assert_eq!(updated.domain, None, "Some(None) clears a field");
    assert_eq!(updated.name, "Globex", "absent fields are kept");
    assert_eq!(updated.employee_count, Some(250));
    assert_eq!(updated.updated_by, Some(org.admin.uuid()));
    assert_eq!(updated.created_by, Some(org.user.uuid()));
    assert!(updated.updated_at >= created.updated_at);

    // A patch that changes nothing writes nothing.
    let same = t
        .update_json(created.id, json!({ "name": "Globex" }))
        .await
        .unwrap();
    assert_eq!(same.version, 2);
}

async fn validation_errors_name_every_field(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.user(&crm);
    let err = t
        .accounts()
        .create(NewAccount {
            name: "  ".into(),
            employee_count: Some(-1),
            annual_revenue_minor: Some(100),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let Error::Validation(errors) = err else {
        panic!("expected validation, got {err:?}")
    };
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["name", "employee_count", "annual_revenue_currency"]
    );

    let err = t
        .contacts()
        .create(NewContact {
            email: Some("not-an-email".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].field == "email"),
        "{err:?}"
    );

    // A patch is validated against the merged record.
    let a = t.account("Ok").await;
    let err = t
        .update_json(a.id, json!({ "name": String::new() }))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].field == "name"),
        "{err:?}"
    );
    assert_eq!(
        t.accounts().get(a.id).await.unwrap().version,
        1,
        "nothing was written"
    );
}

async fn optimistic_versions(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.admin(&crm);
    let a = t.account("V").await;
    let patch = |city: &str| AccountPatch {
        city: Some(Some(city.into())),
        ..Default::default()
    };

    let a2 = t
        .accounts()
        .update_if_version(a.id, 1, patch("Paris"))
        .await
        .unwrap();
    assert_eq!(a2.version, 2);
    let err = t
        .accounts()
        .update_if_version(a.id, 1, patch("Rome"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::VersionMismatch {
                expected: 1,
                actual: 2
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        t.accounts().get(a.id).await.unwrap().city.as_deref(),
        Some("Paris")
    );

    let err = t.accounts().delete_if_version(a.id, 1).await.unwrap_err();
    assert!(matches!(err, Error::VersionMismatch { .. }), "{err:?}");
    let deleted = t.accounts().delete_if_version(a.id, 2).await.unwrap();
    assert_eq!(deleted.version, 3);
    let restored = t.accounts().restore(a.id).await.unwrap();
    assert_eq!(restored.version, 4);
}

async fn soft_delete_restore_and_purge(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.admin(&crm);
    let a = t.account("Trash me").await;

    let deleted = t.accounts().delete(a.id).await.unwrap();
    assert!(deleted.is_deleted);
    assert_eq!(deleted.deleted_by, Some(org.admin.uuid()));
    assert!(deleted.deleted_at.is_some());
    assert!(matches!(
        t.accounts().get(a.id).await,
        Err(Error::NotFound {
            entity: "account",
            ..
        })
    ));
    assert!(
        t.accounts()
            .get_including_deleted(a.id)
            .await
            .unwrap()
            .is_deleted
    );
    assert!(
        matches!(t.accounts().delete(a.id).await, Err(Error::NotFound { .. })),
        "already in the trash"
    );
    assert!(matches!(
        t.accounts().update(a.id, AccountPatch::default()).await,
        Err(Error::NotFound { .. })
    ));

    let restored = t.accounts().restore(a.id).await.unwrap();
    assert!(!restored.is_deleted);
    assert_eq!((restored.deleted_at, restored.deleted_by), (None, None));
    assert!(
        matches!(t.accounts().restore(a.id).await, Err(Error::Conflict(_))),
        "not in the trash"
    );

    t.accounts().purge(a.id).await.unwrap();
    assert!(matches!(
        t.accounts().get_including_deleted(a.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        t.accounts().purge(a.id).await,
        Err(Error::NotFound { .. })
    ));
}

async fn custom_fields_merge_and_validate(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.user(&crm);
    for (key, ty, options) in [
        ("tier", CustomFieldType::Text, &[][..]),
        ("score", CustomFieldType::Number, &[]),
        ("tags", CustomFieldType::MultiSelect, &["a", "b", "c"]),
        ("region", CustomFieldType::Text, &[]),
    ] {
        define(&crm, &org, EntityKind::Account, key, ty, options).await;
    }
    let mut new = NewAccount {
        name: "CF".into(),
        ..Default::default()
    };
    new.custom_fields = json!({"tier": "gold", "score": 7, "tags": ["a", "b"], "dropped": null})
        .as_object()
        .cloned()
        .unwrap();
    let a = t.accounts().create(new).await.unwrap();
    assert_eq!(
        json!(a.custom_fields),
        json!({"tier": "gold", "score": 7, "tags": ["a", "b"]})
    );

    let patch = AccountPatch {
        custom_fields: json!({"tier": null, "region": "emea", "score": 8})
            .as_object()
            .cloned(),
        ..Default::default()
    };
    let a = t.accounts().update(a.id, patch).await.unwrap();
    assert_eq!(
        json!(a.custom_fields),
        json!({"score": 8, "tags": ["a", "b"], "region": "emea"})
    );
    assert_eq!(
        t.accounts().get(a.id).await.unwrap().custom_fields,
        a.custom_fields
    );

    let bad = AccountPatch {
        custom_fields: json!({"Bad Key": 1, "nested": {"x": 1}})
            .as_object()
            .cloned(),
        ..Default::default()
    };
    let err = t.accounts().update(a.id, bad).await.unwrap_err();
    let Error::Validation(errors) = err else {
        panic!("{err:?}")
    };
    let mut fields: Vec<_> = errors.iter().map(|e| e.field.clone()).collect();
    fields.sort();
    assert_eq!(fields, ["custom_fields.Bad Key", "custom_fields.nested"]);
}

crate::on_both_backends!(
    crud_and_audit_columns,
    validation_errors_name_every_field,
    optimistic_versions,
    soft_delete_restore_and_purge,
    custom_fields_merge_and_validate,
);

mod batch {
    use crm_core::{Error, NewContact};

    use crate::harness::{Fixtures as _, Org};

    async fn create_many_is_all_or_nothing(crm: crm_core::Crm) {
        let org = Org::new(&crm, "Acme").await;
        let t = org.user(&crm);
        let account = t.account("Parent").await;
        // More rows than one statement takes on either backend.
        let contacts: Vec<_> = (0..2_600)
            .map(|i| NewContact {
                last_name: Some(format!("c{i:04}")),
                account_id: (i % 2 == 0).then_some(account.id),
                ..Default::default()
            })
            .collect();
        let created = t.contacts().create_many(contacts).await.unwrap();
        assert_eq!(created.len(), 2_600);
        assert!(
            created
                .iter()
                .enumerate()
                .all(|(i, c)| c.last_name.as_deref() == Some(&format!("c{i:04}")[..])),
            "in input order"
        );
        let events = t.events().recent(100, None).await.unwrap();
        assert!(
            events
                .data
                .iter()
                .all(|e| e.entity == "contact" && e.action == crm_core::Action::Created)
        );

        // One bad row: nothing is written, and the error names the row.
        let mut bad: Vec<_> = (0..3)
            .map(|i| NewContact {
                last_name: Some(format!("ok{i}")),
                ..Default::default()
            })
            .collect();
        bad[1].email = Some("broken".into());
        let err = t.contacts().create_many(bad).await.unwrap_err();
        assert!(
            matches!(&err, Error::Validation(e) if e[0].field == "[1].email"),
            "{err:?}"
        );
        let q = crm_core::ListQuery::default().filter("last_name", crm_core::Op::StartsWith, "ok");
        assert!(t.contacts().list(&q).await.unwrap().data.is_empty());
    }

    /// `import` writes rows, events and feed entries exactly as `create_many` does (one
    /// `unnest` statement a batch on PostgreSQL), only without reading the records back.
    async fn import_writes_what_create_many_writes(crm: crm_core::Crm) {
        let org = Org::new(&crm, "Acme").await;
        let t = org.admin(&crm);
        let account = t.account("Parent").await;
        let new = |i: usize| {
            let mut c = NewContact {
                first_name: (!i.is_multiple_of(3)).then(|| format!("Zoë {i}")),
                last_name: Some(format!("c{i:04}")),
                email: Some(format!("c{i}@example.test")),
                account_id: i.is_multiple_of(2).then_some(account.id),
                ..Default::default()
            };
            if i.is_multiple_of(4) {
                c.custom_fields
                    .insert("note".into(), serde_json::json!("x"));
            }
            c
        };
        t.custom_fields()
            .define(
                crm_core::EntityKind::Contact,
                crm_core::NewCustomField::new("note", "Note", crm_core::CustomFieldType::Text),
            )
            .await
            .unwrap();
        let created = t
            .contacts()
            .create_many((0..50).map(new).collect())
            .await
            .unwrap();
        let mut cursor = Some(t.changes().head().await.unwrap());
        let ids = t
            .contacts()
            .import((0..2_600).map(new).collect())
            .await
            .unwrap();
        assert_eq!(ids.len(), 2_600);
        for (i, c) in created.iter().enumerate() {
            let imported = t.contacts().get(ids[i]).await.unwrap();
            assert_eq!(imported.last_name, c.last_name, "in input order");
            assert_eq!(imported.first_name, c.first_name);
            assert_eq!(imported.email, c.email);
            assert_eq!(imported.account_id, c.account_id);
            assert_eq!(imported.custom_fields, c.custom_fields);
            assert_eq!((imported.version, imported.is_deleted), (1, false));
            assert_eq!(imported.created_at, imported.updated_at);
        }
        let history = t.contacts().history(ids[7], None, 10, None).await.unwrap();
        let mut fields: Vec<_> = history.data.iter().map(|h| h.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["email", "first_name", "last_name"]);
        assert!(
            history
                .data
                .iter()
                .all(|h| h.write.action == crm_core::Action::Created
                    && h.write.id == history.data[0].write.id),
            "one created event per record"
        );
        let mut fed = 0;
        loop {
            let page = t.changes().after(cursor.as_deref(), 1_000).await.unwrap();
            fed += page.data.len();
            cursor = page.data.last().map(|c| c.cursor.clone()).or(cursor);
            if page.next_cursor.is_none() {
                break;
            }
        }
        assert_eq!(fed, 2_600, "every import is in the feed");

        // A dangling link: nothing of the batch is written.
        let mut bad: Vec<_> = (0..3).map(|i| new(10_000 + i)).collect();
        bad[2].account_id = Some(crm_core::AccountId::new());
        let err = t.contacts().import(bad).await.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
        let q = crm_core::ListQuery::default().filter("last_name", crm_core::Op::Eq, "c10000");
        assert!(t.contacts().list(&q).await.unwrap().data.is_empty());
    }

    crate::on_both_backends!(
        create_many_is_all_or_nothing,
        import_writes_what_create_many_writes
    );
}
