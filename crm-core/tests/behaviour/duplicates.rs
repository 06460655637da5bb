//! Unique custom fields (enforced by the database, nulls never collide) and duplicate detection
//! on create and import (warn, reject, ignore), one organization only.

use crm_core::{
    Contact, Crm, CustomFieldPatch, CustomFieldType, DuplicatePolicy, EntityKind, Error, MatchRule,
    NewAccount, NewContact, NewCustomField, NewLead,
};
use serde_json::{Value, json};

use crate::harness::{Fixtures as _, Org};

/// A new organization whose contacts have a unique `email` custom field `work_email` and a
/// unique number `badge`.
async fn with_unique(crm: &Crm, name: &str) -> Org {
    let org = Org::new(crm, name).await;
    let t = org.admin(crm);
    for (key, ty) in [
        ("work_email", CustomFieldType::Email),
        ("badge", CustomFieldType::Number),
    ] {
        let mut f = NewCustomField::new(key, key, ty);
        f.unique = true;
        t.custom_fields()
            .define(EntityKind::Contact, f)
            .await
            .unwrap();
    }
    org
}

fn contact(last: &str, custom: Value) -> Value {
    json!({ "last_name": last, "custom_fields": custom })
}

#[track_caller]
fn assert_taken(err: &Error, field: &str) {
    match err {
        Error::Conflict(r) => {
            assert_eq!(r.code, "duplicate", "{err:?}");
            assert!(r.message.contains(field), "{r:?} should name {field}");
        }
        other => panic!("expected a duplicate conflict on {field}, got {other:?}"),
    }
}

async fn unique_values_collide_on_create_update_and_import(crm: Crm) {
    let org = with_unique(&crm, "Unique").await;
    let t = org.admin(&crm);
    let a = t
        .create_json::<Contact>(contact(
            "A",
            json!({"work_email": "Ada@Example.com", "badge": 1}),
        ))
        .await
        .unwrap();
    // Case-insensitive email, 1 and 1.0 the same number.
    let err = t
        .create_json::<Contact>(contact("B", json!({"work_email": "ada@example.COM"})))
        .await
        .unwrap_err();
    assert_taken(&err, "custom_fields.work_email");
    let err = t
        .create_json::<Contact>(contact("B", json!({"badge": 1.0})))
        .await
        .unwrap_err();
    assert_taken(&err, "custom_fields.badge");

    // Absent and null values never collide.
    let b = t
        .create_json::<Contact>(contact("B", json!({})))
        .await
        .unwrap();
    let c = t
        .create_json::<Contact>(contact("C", json!({"badge": null})))
        .await
        .unwrap();

    // Update: taking a used value is refused; changing one's own frees the old value.
    let err = t
        .update_json(b.id, json!({"custom_fields": {"badge": 1}}))
        .await
        .unwrap_err();
    assert_taken(&err, "custom_fields.badge");
    t.update_json(a.id, json!({"custom_fields": {"badge": 2}}))
        .await
        .unwrap();
    t.update_json(b.id, json!({"custom_fields": {"badge": 1}}))
        .await
        .unwrap();
    // A patch that does not touch the field keeps it (no self-collision).
    t.update_json(b.id, json!({"first_name": "Bea"}))
        .await
        .unwrap();

    // Import: against the stored records, and within the batch; nothing is written.
    let new = |last: &str, badge: i64| -> NewContact {
        serde_json::from_value(contact(last, json!({"badge": badge}))).unwrap()
    };
    let err = t
        .contacts()
        .import(vec![new("D", 10), new("E", 2)])
        .await
        .unwrap_err();
    assert_taken(&err, "custom_fields.badge");
    let err = t
        .contacts()
        .import(vec![new("D", 11), new("E", 11)])
        .await
        .unwrap_err();
    assert_taken(&err, "custom_fields.badge");
    let page = t.contacts().list(&Default::default()).await.unwrap();
    assert_eq!(page.data.len(), 3);
    let ids = t
        .contacts()
        .import(vec![new("D", 11), new("E", 12)])
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    let _ = c;
}

async fn the_trash_keeps_values_and_purge_frees_them(crm: Crm) {
    let org = with_unique(&crm, "Trash").await;
    let t = org.admin(&crm);
    let a = t
        .create_json::<Contact>(contact("A", json!({"badge": 7})))
        .await
        .unwrap();
    t.contacts().delete(a.id).await.unwrap();
    let err = t
        .create_json::<Contact>(contact("B", json!({"badge": 7})))
        .await
        .unwrap_err();
    assert_taken(&err, "custom_fields.badge");
    // So that a restore can never collide.
    t.contacts().restore(a.id).await.unwrap();
    t.contacts().purge(a.id).await.unwrap();
    t.create_json::<Contact>(contact("B", json!({"badge": 7})))
        .await
        .unwrap();
}

async fn making_a_field_unique_checks_existing_values(crm: Crm) {
    let org = Org::new(&crm, "Backfill").await;
    let t = org.admin(&crm);
    t.custom_fields()
        .define(
            EntityKind::Contact,
            NewCustomField::new("code", "Code", CustomFieldType::Text),
        )
        .await
        .unwrap();
    let a = t
        .create_json::<Contact>(contact("A", json!({"code": "x"})))
        .await
        .unwrap();
    t.create_json::<Contact>(contact("B", json!({"code": "x"})))
        .await
        .unwrap();
    t.create_json::<Contact>(contact("C", json!({})))
        .await
        .unwrap();
    let unique = CustomFieldPatch {
        unique: Some(true),
        ..Default::default()
    };
    let err = t
        .custom_fields()
        .update(EntityKind::Contact, "code", unique.clone())
        .await
        .unwrap_err();
    assert_taken(&err, "custom_fields.code");
    assert!(
        !t.custom_fields()
            .get(EntityKind::Contact, "code")
            .await
            .unwrap()
            .unique
    );
    // Once the collision is gone, the backfill passes and the field is enforced.
    t.update_json(a.id, json!({"custom_fields": {"code": "y"}}))
        .await
        .unwrap();
    let def = t
        .custom_fields()
        .update(EntityKind::Contact, "code", unique)
        .await
        .unwrap();
    assert!(def.unique);
    let err = t
        .create_json::<Contact>(contact("D", json!({"code": "y"})))
        .await
        .unwrap_err();
    assert_taken(&err, "custom_fields.code");
    // Not unique any more: the same value is fine.
    let not_unique = CustomFieldPatch {
        unique: Some(false),
        ..Default::default()
    };
    t.custom_fields()
        .update(EntityKind::Contact, "code", not_unique)
        .await
        .unwrap();
    t.create_json::<Contact>(contact("D", json!({"code": "y"})))
        .await
        .unwrap();

    // Types that cannot be unique are refused.
    let mut flag = NewCustomField::new("flag", "Flag", CustomFieldType::Boolean);
    flag.unique = true;
    let err = t
        .custom_fields()
        .define(EntityKind::Contact, flag)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].field == "unique"),
        "{err:?}"
    );
}

async fn organizations_never_collide_or_match(crm: Crm) {
    let one = with_unique(&crm, "One").await;
    let two = with_unique(&crm, "Two").await;
    let (t1, t2) = (one.admin(&crm), two.admin(&crm));
    let input = || {
        contact(
            "Badge",
            json!({"badge": 5, "work_email": "same@example.com"}),
        )
    };
    t1.create_json::<Contact>(input()).await.unwrap();
    t2.create_json::<Contact>(input()).await.unwrap();
    let new: NewContact =
        serde_json::from_value(json!({"last_name": "Same", "email": "s@x.io"})).unwrap();
    t1.contacts().create(new.clone()).await.unwrap();
    let created = t2
        .contacts()
        .create_with(new, DuplicatePolicy::Reject)
        .await
        .unwrap();
    assert!(created.duplicates.is_empty());
}

async fn duplicates_are_warned_rejected_or_ignored_on_create(crm: Crm) {
    let org = Org::new(&crm, "Dups").await;
    let t = org.admin(&crm);
    let ada = t
        .contacts()
        .create(NewContact {
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            email: Some("ada@example.com".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let again = || NewContact {
        first_name: Some(" ADA ".into()),
        last_name: Some("Lovelace.".into()),
        email: Some("Ada@Example.com".into()),
        ..Default::default()
    };
    let warned = t
        .contacts()
        .create_with(again(), DuplicatePolicy::Warn)
        .await
        .unwrap();
    let mut rules: Vec<_> = warned.duplicates.iter().map(|d| (d.rule, d.id)).collect();
    rules.sort();
    assert_eq!(
        rules,
        vec![
            (MatchRule::Email, ada.id.uuid()),
            (MatchRule::Name, ada.id.uuid())
        ]
    );
    let err = t
        .contacts()
        .create_with(again(), DuplicatePolicy::Reject)
        .await
        .unwrap_err();
    match &err {
        Error::Duplicates { entity, matches } => {
            assert_eq!(*entity, "contact");
            // Both earlier records match, by both rules.
            assert_eq!(matches.len(), 4, "{matches:?}");
        }
        other => panic!("expected duplicates, got {other:?}"),
    }
    let ignored = t
        .contacts()
        .create_with(again(), DuplicatePolicy::Ignore)
        .await
        .unwrap();
    assert!(ignored.duplicates.is_empty());

    // The trash is not reported.
    t.contacts().delete(ada.id).await.unwrap();
    t.contacts().delete(warned.record.id).await.unwrap();
    t.contacts().delete(ignored.record.id).await.unwrap();
    let fresh = t
        .contacts()
        .create_with(again(), DuplicatePolicy::Reject)
        .await
        .unwrap();
    assert!(fresh.duplicates.is_empty());

    // An update moves the keys: the old email no longer matches, the new one does.
    t.update_json(
        fresh.record.id,
        json!({"email": "countess@example.com", "last_name": "King"}),
    )
    .await
    .unwrap();
    let new = NewContact {
        email: Some("ada@example.com".into()),
        ..Default::default()
    };
    let c = t.contacts().create_with(new, DuplicatePolicy::Reject).await;
    assert!(c.is_ok(), "{c:?}");
    let new = NewContact {
        email: Some("COUNTESS@example.com".into()),
        ..Default::default()
    };
    let c = t
        .contacts()
        .create_with(new, DuplicatePolicy::Warn)
        .await
        .unwrap();
    assert_eq!(c.duplicates[0].id, fresh.record.id.uuid());
}

async fn accounts_match_by_domain_and_company_name(crm: Crm) {
    let org = Org::new(&crm, "Accounts").await;
    let t = org.admin(&crm);
    let acme = t
        .accounts()
        .create(NewAccount {
            name: "Acme, Inc.".into(),
            domain: Some("www.acme.com".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let by_name = t
        .accounts()
        .create_with(
            NewAccount {
                name: "ACME LLC".into(),
                ..Default::default()
            },
            DuplicatePolicy::Warn,
        )
        .await
        .unwrap();
    assert_eq!(
        by_name
            .duplicates
            .iter()
            .map(|d| (d.rule, d.id))
            .collect::<Vec<_>>(),
        vec![(MatchRule::Name, acme.id.uuid())]
    );
    let by_domain = t
        .accounts()
        .create_with(
            NewAccount {
                name: "Other".into(),
                domain: Some("https://ACME.com/".into()),
                ..Default::default()
            },
            DuplicatePolicy::Warn,
        )
        .await
        .unwrap();
    assert_eq!(
        by_domain
            .duplicates
            .iter()
            .map(|d| (d.rule, d.id))
            .collect::<Vec<_>>(),
        vec![(MatchRule::Domain, acme.id.uuid())]
    );
    // Leads match leads.
    let lead = || NewLead {
        email: Some("x@acme.com".into()),
        last_name: Some("X".into()),
        ..Default::default()
    };
    t.leads().create(lead()).await.unwrap();
    let dup = t
        .leads()
        .create_with(lead(), DuplicatePolicy::Warn)
        .await
        .unwrap();
    assert!(dup.duplicates.iter().any(|d| d.rule == MatchRule::Email));
}

async fn imports_report_duplicates_by_index_within_the_batch_too(crm: Crm) {
    let org = Org::new(&crm, "Import").await;
    let t = org.admin(&crm);
    let old = t
        .contacts()
        .create(NewContact {
            email: Some("old@example.com".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let items = || {
        vec![
            NewContact {
                email: Some("new@example.com".into()),
                ..Default::default()
            },
            NewContact {
                email: Some("OLD@example.com".into()),
                ..Default::default()
            },
            NewContact {
                email: Some("new@example.com".into()),
                ..Default::default()
            },
        ]
    };
    let err = t
        .contacts()
        .import_with(items(), DuplicatePolicy::Reject)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Duplicates { .. }), "{err:?}");
    assert_eq!(
        t.contacts()
            .list(&Default::default())
            .await
            .unwrap()
            .data
            .len(),
        1
    );

    let imported = t
        .contacts()
        .import_with(items(), DuplicatePolicy::Warn)
        .await
        .unwrap();
    let found: Vec<_> = imported
        .duplicates
        .iter()
        .map(|d| (d.index, d.id, d.rule))
        .collect();
    assert_eq!(
        found,
        vec![
            (1, old.id.uuid(), MatchRule::Email),
            (2, imported.ids[0].uuid(), MatchRule::Email),
        ]
    );
    let ignored = t
        .contacts()
        .import_with(items(), DuplicatePolicy::Ignore)
        .await
        .unwrap();
    assert!(ignored.duplicates.is_empty());
    assert_eq!(ignored.ids.len(), 3);
}

crate::on_both_backends!(
    unique_values_collide_on_create_update_and_import,
    the_trash_keeps_values_and_purge_frees_them,
    making_a_field_unique_checks_existing_values,
    organizations_never_collide_or_match,
    duplicates_are_warned_rejected_or_ignored_on_create,
    accounts_match_by_domain_and_company_name,
    imports_report_duplicates_by_index_within_the_batch_too,
);
