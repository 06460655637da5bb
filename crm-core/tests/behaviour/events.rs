//! The event log: one entry per write, with before/after values, in the write's transaction.

use crm_core::{AccountPatch, Action, CustomFieldType, EntityKind, NewAccount};
use serde_json::json;

use crate::harness::{Fixtures as _, Org};

async fn every_write_is_logged_with_its_changes(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.admin(&crm);
    let tier = [("tier", CustomFieldType::Text)];
    org.define_fields(&crm, EntityKind::Account, &tier).await;
    let mut new = NewAccount {
        name: "Logged".into(),
        city: Some("Oslo".into()),
        ..Default::default()
    };
    new.custom_fields.insert("tier".into(), json!("gold"));
    let a = t.accounts().create(new).await.unwrap();
    // The same patch twice: the second changes nothing, and a no-op patch logs nothing.
    for _ in 0..2 {
        let patch = AccountPatch {
            city: Some(Some("Bergen".into())),
            ..Default::default()
        };
        t.accounts().update(a.id, patch).await.unwrap();
    }
    t.accounts().delete(a.id).await.unwrap();
    t.accounts().restore(a.id).await.unwrap();
    t.accounts().purge(a.id).await.unwrap();

    let page = t.events().for_record(a.id, 100, None).await.unwrap();
    let actions: Vec<_> = page.data.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            Action::Purged,
            Action::Restored,
            Action::Deleted,
            Action::Updated,
            Action::Created
        ],
        "newest first"
    );
    for e in &page.data {
        assert_eq!(e.organization_id, org.id);
        assert_eq!(e.record_id, a.id.uuid());
        assert_eq!(e.actor_kind, "user");
        assert_eq!(e.actor_id, Some(org.admin.uuid()));
    }
    let created = &page.data[4];
    assert_eq!(json!(created.changes["name"]), json!({"after": "Logged"}));
    assert_eq!(
        json!(created.changes["custom_fields.tier"]),
        json!({"after": "gold"})
    );
    assert!(
        !created.changes.contains_key("domain"),
        "empty fields are not logged"
    );
    let updated = &page.data[3];
    assert_eq!(
        json!(updated.changes),
        json!({"city": {"before": "Oslo", "after": "Bergen"}})
    );
    assert_eq!(
        json!(page.data[2].changes),
        json!({"is_deleted": {"before": false, "after": true}})
    );

    // Paging through the log.
    let first = t.events().for_record(a.id, 2, None).await.unwrap();
    assert_eq!(first.data.len(), 2);
    let rest = t
        .events()
        .for_record(a.id, 10, first.next_cursor.as_deref())
        .await
        .unwrap();
    assert_eq!(rest.data.len(), 3);
    assert!(rest.next_cursor.is_none());
}

async fn failed_writes_log_nothing(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.admin(&crm);
    let before = t.events().recent(100, None).await.unwrap().data.len();
    let _ = t
        .accounts()
        .create(NewAccount {
            name: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let a = t.account("x").await;
    let _ = t
        .accounts()
        .update_if_version(a.id, 9, AccountPatch::default())
        .await
        .unwrap_err();
    let after = t.events().recent(100, None).await.unwrap().data.len();
    assert_eq!(after, before + 1, "only the successful create is logged");
}

crate::on_both_backends!(
    every_write_is_logged_with_its_changes,
    failed_writes_log_nothing
);
