//! Merging duplicates: field choices, references re-pointed (contacts, opportunities,
//! activities), events, redirects of merged ids (chains collapse), the survivor's history,
//! refusals (other organizations, invoices, restore of a merged record).

use std::collections::BTreeMap;

use crm_core::{
    Account, Action, ActivityKind, Contact, Crm, CustomFieldType, DuplicatePolicy, EntityKind,
    Error, Id, Merge, NewActivity, NewContact, NewCustomField, NewInvoice, NewOpportunity,
};
use serde_json::json;
use uuid::Uuid;

use crate::harness::{Fixtures as _, Org};

fn merge(absorb: &[Uuid], fields: &[(&str, Uuid)]) -> Merge {
    Merge {
        absorb: absorb.to_vec(),
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect::<BTreeMap<_, _>>(),
    }
}

#[track_caller]
fn assert_moved(err: Error, to: Uuid) {
    match err {
        Error::Moved { to: t, .. } => assert_eq!(t, to),
        other => panic!("expected moved to {to}, got {other:?}"),
    }
}

async fn a_merge_moves_references_and_keeps_chosen_fields(crm: Crm) {
    let org = Org::new(&crm, "Merge").await;
    let t = org.admin(&crm);
    let keep = t
        .create_json::<Account>(json!({"name": "Globex", "industry": "Energy"}))
        .await
        .unwrap();
    let dup = t
        .create_json::<Account>(
            json!({"name": "Globex Inc", "domain": "globex.com", "industry": "Oil"}),
        )
        .await
        .unwrap();
    let ada = t
        .create_json::<Contact>(json!({"last_name": "Ada", "account_id": dup.id}))
        .await
        .unwrap();
    let deal = t
        .opportunities()
        .create(NewOpportunity {
            name: "Deal".into(),
            account_id: Some(dup.id),
            ..Default::default()
        })
        .await
        .unwrap();
    let note = t
        .activities()
        .create(NewActivity {
            kind: ActivityKind::Note,
            subject: "Met them".into(),
            related_entity: EntityKind::Account,
            related_id: dup.id.uuid(),
            ..Default::default()
        })
        .await
        .unwrap();

    let kept = t
        .accounts()
        .merge(
            keep.id,
            merge(&[dup.id.uuid()], &[("domain", dup.id.uuid())]),
        )
        .await
        .unwrap();
    assert_eq!(kept.domain.as_deref(), Some("globex.com"));
    assert_eq!(kept.industry.as_deref(), Some("Energy"));
    assert_eq!(kept.name, "Globex");

    // References point at the survivor, each with a new version.
    let ada2 = t.contacts().get(ada.id).await.unwrap();
    assert_eq!(ada2.account_id, Some(keep.id));
    assert_eq!(ada2.version, ada.version + 1);
    let deal2 = t.opportunities().get(deal.id).await.unwrap();
    assert_eq!(deal2.account_id, Some(keep.id));
    let note2 = t.activities().get(note.id).await.unwrap();
    assert_eq!(note2.related_id, keep.id.uuid());
    let timeline = t
        .timeline(EntityKind::Account, keep.id.uuid(), 50, None)
        .await
        .unwrap();
    assert!(!timeline.data.is_empty());

    // The absorbed record is in the trash and answers with the survivor.
    assert_moved(t.accounts().get(dup.id).await.unwrap_err(), keep.id.uuid());
    let gone = t.accounts().get_including_deleted(dup.id).await.unwrap();
    assert!(gone.is_deleted);
    let err = t.accounts().restore(dup.id).await.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(r) if r.code == "merged"),
        "{err:?}"
    );
    assert_moved(
        t.update_json(dup.id, json!({"city": "Oslo"}))
            .await
            .unwrap_err(),
        keep.id.uuid(),
    );

    // Events: `merged` on both, `updated` on the re-pointed contact.
    let events = t.events().for_record(dup.id, 10, None).await.unwrap();
    assert_eq!(events.data[0].action, Action::Merged);
    assert_eq!(
        events.data[0].changes["merged_into"]["after"],
        json!(keep.id)
    );
    let events = t.events().for_record(keep.id, 10, None).await.unwrap();
    assert_eq!(events.data[0].action, Action::Merged);
    assert_eq!(events.data[0].changes["absorbed"]["after"], json!([dup.id]));
    let events = t.events().for_record(ada.id, 10, None).await.unwrap();
    assert_eq!(events.data[0].action, Action::Updated);
    assert_eq!(
        events.data[0].changes["account_id"],
        json!({"before": dup.id, "after": keep.id})
    );

    // The survivor's history includes the absorbed record's.
    let history = t
        .accounts()
        .history(keep.id, Some("industry"), 50, None)
        .await
        .unwrap();
    let values: Vec<_> = history.data.iter().map(|c| c.after.clone()).collect();
    assert!(values.contains(&json!("Oil")), "{values:?}");
    assert!(values.contains(&json!("Energy")), "{values:?}");

    // The absorbed record's keys are gone: it is no duplicate any more, the survivor is.
    let again = t
        .accounts()
        .create_with(
            serde_json::from_value(json!({"name": "x", "domain": "globex.com"})).unwrap(),
            DuplicatePolicy::Warn,
        )
        .await
        .unwrap();
    assert_eq!(
        again.duplicates.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![keep.id.uuid()]
    );
}

async fn chains_collapse_and_unique_values_move(crm: Crm) {
    let org = Org::new(&crm, "Chain").await;
    let t = org.admin(&crm);
    let mut f = NewCustomField::new("badge", "Badge", CustomFieldType::Number);
    f.unique = true;
    t.custom_fields()
        .define(EntityKind::Contact, f)
        .await
        .unwrap();
    let a = t.contact("A").await;
    let b = t
        .create_json::<Contact>(json!({"last_name": "B", "custom_fields": {"badge": 9}}))
        .await
        .unwrap();
    let c = t.contact("C").await;
    // The survivor takes b's unique value.
    let kept = t
        .contacts()
        .merge(
            a.id,
            merge(&[b.id.uuid()], &[("custom_fields.badge", b.id.uuid())]),
        )
        .await
        .unwrap();
    assert_eq!(kept.custom_fields["badge"], json!(9));
    // a is merged into c: b now answers with c.
    t.contacts()
        .merge(c.id, merge(&[a.id.uuid()], &[]))
        .await
        .unwrap();
    assert_moved(t.contacts().get(b.id).await.unwrap_err(), c.id.uuid());
    assert_moved(t.contacts().get(a.id).await.unwrap_err(), c.id.uuid());
    // The value went with a into the trash; c's history holds all three.
    let history = t
        .contacts()
        .history(c.id, Some("last_name"), 50, None)
        .await
        .unwrap();
    let names: Vec<_> = history.data.iter().map(|h| h.after.clone()).collect();
    for n in ["A", "B", "C"] {
        assert!(names.contains(&json!(n)), "{names:?}");
    }
}

async fn merges_are_refused_when_they_should_be(crm: Crm) {
    let one = Org::new(&crm, "One").await;
    let two = Org::new(&crm, "Two").await;
    let (t1, t2) = (one.admin(&crm), two.admin(&crm));
    let a = t1.account("A").await;
    let b = t1.account("B").await;
    let other = t2.account("Other").await;
    // Another organization's record is not found.
    let err = t1
        .accounts()
        .merge(a.id, merge(&[other.id.uuid()], &[]))
        .await
        .unwrap_err();
    crate::harness::assert_not_found(&err, "account");
    let err = t2
        .accounts()
        .merge(other.id, merge(&[a.id.uuid()], &[]))
        .await
        .unwrap_err();
    crate::harness::assert_not_found(&err, "account");
    // Not itself, not twice, not empty.
    for bad in [
        merge(&[a.id.uuid()], &[]),
        merge(&[b.id.uuid(), b.id.uuid()], &[]),
        merge(&[], &[]),
    ] {
        let err = t1.accounts().merge(a.id, bad).await.unwrap_err();
        assert!(
            matches!(&err, Error::Validation(e) if e[0].field == "absorb"),
            "{err:?}"
        );
    }
    // Field choices name a writable field and an involved record.
    let err = t1
        .accounts()
        .merge(
            a.id,
            merge(
                &[b.id.uuid()],
                &[("name", other.id.uuid()), ("nope", b.id.uuid())],
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e.len() == 2),
        "{err:?}"
    );
    // Invoices are not mergeable.
    let inv = || NewInvoice {
        account_id: Some(a.id),
        currency: "EUR".into(),
        ..Default::default()
    };
    let i1 = t1.invoices().create(inv()).await.unwrap();
    let i2 = t1.invoices().create(inv()).await.unwrap();
    let err = t1
        .invoices()
        .merge(i1.id, merge(&[i2.id.uuid()], &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].code == "not_mergeable"),
        "{err:?}"
    );
    // A plain user may not absorb a record they neither created nor own.
    let user = one.user(&crm);
    let mine = user.account("Mine").await;
    let err = user
        .accounts()
        .merge(mine.id, merge(&[b.id.uuid()], &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Forbidden(r) if r.code == "not_owner"),
        "{err:?}"
    );
    // Nothing happened.
    t1.accounts().get(b.id).await.unwrap();
    let _: Id<Contact> = t1
        .contacts()
        .create(NewContact {
            last_name: Some("x".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
}

/// A plain user merges an account they own into another: a sent (then paid) invoice keeps the
/// account it was issued to, as a `PATCH` of its account would be refused (`not_draft`); a draft
/// follows the survivor.
async fn a_merge_leaves_issued_invoices_where_they_were_issued(crm: Crm) {
    let org = Org::new(&crm, "Merge").await;
    let admin = org.admin(&crm);
    let t = org.user(&crm);
    let keep = t.account("Globex").await.id;
    let dup = t.account("Globex Inc").await.id;
    let new_invoice = || NewInvoice {
        account_id: Some(dup),
        currency: "EUR".into(),
        line_items: crm_core::sqlx::types::Json(vec![crm_core::LineItem::new("Work", 1, 100, 0)]),
        ..Default::default()
    };
    let paid = t.invoices().create(new_invoice()).await.unwrap();
    t.invoices().send(paid.id).await.unwrap();
    admin.invoices().mark_paid(paid.id).await.unwrap();
    let draft = t.invoices().create(new_invoice()).await.unwrap();

    t.accounts()
        .merge(keep, merge(&[dup.uuid()], &[]))
        .await
        .unwrap();

    let paid = t.invoices().get(paid.id).await.unwrap();
    assert_eq!(
        paid.account_id,
        Some(dup),
        "an issued invoice keeps its account"
    );
    assert_eq!(paid.status, crm_core::InvoiceStatus::Paid);
    let draft = t.invoices().get(draft.id).await.unwrap();
    assert_eq!(draft.account_id, Some(keep), "a draft follows the survivor");
    // The account it keeps answers with the survivor.
    assert_moved(t.accounts().get(dup).await.unwrap_err(), keep.uuid());
}

crate::on_both_backends!(
    a_merge_leaves_issued_invoices_where_they_were_issued,
    a_merge_moves_references_and_keeps_chosen_fields,
    chains_collapse_and_unique_values_move,
    merges_are_refused_when_they_should_be,
);
