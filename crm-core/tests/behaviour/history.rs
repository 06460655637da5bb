//! Field history from the event log: each field's before and after per write, with the actor
//! and the request; paging; past states rebuilt at any moment; nothing left of an erased person;
//! one organization only.

use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_core::Action::{Created, Deleted, Updated};
use crm_core::{
    Action, Contact, ContactId, Crm, CustomFieldType, EntityKind, Error, FieldChange, Record,
    Tenant, TenantContext,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{self, Fixtures as _, Org};

/// `(field, before, after, action)` of a change.
type Summary = (String, Value, Value, Action);

/// The [`Summary`] of each change.
fn summary(changes: &[FieldChange]) -> Vec<Summary> {
    changes
        .iter()
        .map(|c| {
            (
                c.field.clone(),
                c.before.clone(),
                c.after.clone(),
                c.write.action,
            )
        })
        .collect()
}

/// A [`Summary`], written short.
fn change(field: &str, before: Value, after: Value, action: Action) -> Summary {
    (field.to_owned(), before, after, action)
}

/// A moment strictly between the writes before and after it.
async fn moment() -> DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(3)).await;
    let t = Utc::now();
    tokio::time::sleep(Duration::from_millis(3)).await;
    t
}

/// A new organization whose contacts have a text custom field `tier`.
async fn with_tier(crm: &Crm, name: &str) -> Org {
    let org = Org::new(crm, name).await;
    org.define_fields(crm, EntityKind::Contact, &[("tier", CustomFieldType::Text)])
        .await;
    org
}

async fn every_field_change_is_listed_with_its_actor_and_request(crm: Crm) {
    let org = with_tier(&crm, "History").await;
    let request = Uuid::now_v7();
    let t = crm.tenant(
        &TenantContext::user(org.id, org.user, crm_core::Role::User).with_request_id(Some(request)),
    );
    let c: Record<Contact> = t
        .create_json(json!({"first_name": "Ada", "last_name": "Byron"}))
        .await
        .unwrap();
    t.update_json(c.id, json!({"last_name": "King"}))
        .await
        .unwrap();
    let admin = org.admin(&crm);
    admin
        .update_json(
            c.id,
            json!({"last_name": "Lovelace", "custom_fields": {"tier": "gold"}}),
        )
        .await
        .unwrap();
    admin.contacts().delete(c.id).await.unwrap();

    let names = t
        .contacts()
        .history(c.id, Some("last_name"), 10, None)
        .await
        .unwrap();
    assert_eq!(
        summary(&names.data),
        [
            change("last_name", json!("King"), json!("Lovelace"), Updated),
            change("last_name", json!("Byron"), json!("King"), Updated),
            change("last_name", Value::Null, json!("Byron"), Created),
        ]
    );
    assert!(names.next_cursor.is_none());
    // Who and which request: the user's writes carry the request id, the admin's none.
    assert_eq!(names.data[1].write.actor_kind, "user");
    assert_eq!(names.data[1].write.actor_id, Some(org.user.uuid()));
    assert_eq!(names.data[1].write.request_id, Some(request));
    assert_eq!(names.data[0].write.actor_id, Some(org.admin.uuid()));
    assert_eq!(names.data[0].write.request_id, None);

    // Every field, newest write first, by field name within a write; trashed records keep it.
    let all = t.contacts().history(c.id, None, 100, None).await.unwrap();
    assert_eq!(
        summary(&all.data),
        [
            change("is_deleted", json!(false), json!(true), Deleted),
            change("custom_fields.tier", Value::Null, json!("gold"), Updated),
            change("last_name", json!("King"), json!("Lovelace"), Updated),
            change("last_name", json!("Byron"), json!("King"), Updated),
            change("first_name", Value::Null, json!("Ada"), Created),
            change("last_name", Value::Null, json!("Byron"), Created),
        ]
    );
    let tier = t
        .contacts()
        .history(c.id, Some("custom_fields.tier"), 10, None)
        .await
        .unwrap();
    assert_eq!(tier.data.len(), 1);

    // Page by page, one change a page, the same list.
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = t
            .contacts()
            .history(c.id, None, 1, cursor.as_deref())
            .await
            .unwrap();
        paged.extend(page.data);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(summary(&paged), summary(&all.data));

    // Bad requests name the parameter; another organization finds no such record.
    for (field, limit, cursor, expected) in [
        (Some("nope"), 10, None, ("field", "unknown_field")),
        (
            Some("custom_fields.Bad Key"),
            10,
            None,
            ("field", "unknown_field"),
        ),
        (None, 0, None, ("limit", "out_of_range")),
        (None, 101, None, ("limit", "out_of_range")),
        (None, 10, Some("garbage"), ("cursor", "invalid_cursor")),
    ] {
        let err = t
            .contacts()
            .history(c.id, field, limit, cursor)
            .await
            .unwrap_err();
        let Error::Validation(e) = &err else {
            panic!("{err:?}")
        };
        assert_eq!((e[0].field.as_str(), e[0].code), expected);
    }
    let other = Org::new(&crm, "Other").await.admin(&crm);
    no_history(&other, c.id, Utc::now()).await;
}

/// Neither the history of contact `id` nor its state at `at` is found in `t`.
async fn no_history(t: &Tenant, id: ContactId, at: DateTime<Utc>) {
    let err = t.contacts().history(id, None, 10, None).await.unwrap_err();
    harness::assert_not_found(&err, "contact");
    let err = t.contacts().as_of(id, at).await.unwrap_err();
    harness::assert_not_found(&err, "contact");
}

async fn past_states_are_rebuilt_from_the_log(crm: Crm) {
    let org = with_tier(&crm, "AsOf").await;
    let t = org.admin(&crm);
    let before_all = moment().await;
    let c: Record<Contact> = t
        .create_json(json!({"first_name": "Grace", "email": "grace@navy.example"}))
        .await
        .unwrap();
    let mut snapshots = vec![(moment().await, t.contacts().get(c.id).await.unwrap())];
    let patches = [
        json!({"last_name": "Hopper", "custom_fields": {"tier": "gold"}}),
        json!({"email": null, "title": "Rear Admiral"}),
        json!({"custom_fields": {"tier": null}, "first_name": "Amazing Grace"}),
    ];
    for patch in patches {
        t.update_json(c.id, patch).await.unwrap();
        snapshots.push((moment().await, t.contacts().get(c.id).await.unwrap()));
    }
    t.contacts().delete(c.id).await.unwrap();
    let deleted = (
        moment().await,
        t.contacts().get_including_deleted(c.id).await.unwrap(),
    );
    t.contacts().restore(c.id).await.unwrap();
    snapshots.push(deleted);
    snapshots.push((moment().await, t.contacts().get(c.id).await.unwrap()));

    // Every column as it was: the version, the trash columns, and `updated_at`, which is the
    // time its last write logged.
    for (at, then) in &snapshots {
        let rebuilt = t.contacts().as_of(c.id, *at).await.unwrap();
        assert_eq!(&rebuilt, then, "at {at}");
        let exactly = t.contacts().as_of(c.id, then.updated_at).await.unwrap();
        assert_eq!(&exactly, then, "at its updated_at");
    }
    let err = t.contacts().as_of(c.id, before_all).await.unwrap_err();
    harness::assert_not_found(&err, "contact");
}

async fn an_erased_person_has_no_history_left(crm: Crm) {
    let org = Org::new(&crm, "Erased").await;
    let t = org.admin(&crm);
    let c = t.contact("Forgotten").await;
    t.update_json(c.id, json!({"first_name": "Someone"}))
        .await
        .unwrap();
    let then = moment().await;
    t.contacts().erase(c.id).await.unwrap();
    no_history(&t, c.id, then).await;
    // Nor does the event log hold the values any more.
    let page = t.events().for_record(c.id, 100, None).await.unwrap();
    let text = serde_json::to_string(&page.data).unwrap();
    assert!(
        !text.contains("Forgotten") && !text.contains("Someone"),
        "{text}"
    );
}

crate::on_both_backends!(
    every_field_change_is_listed_with_its_actor_and_request,
    past_states_are_rebuilt_from_the_log,
    an_erased_person_has_no_history_left,
);
