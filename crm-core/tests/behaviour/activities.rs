//! Activities attached to records, task completion, and record timelines.

use crm_core::{
    AccountPatch, ActivityKind, ActivityPatch, EntityKind, Error, NewActivity, TimelineItem,
};
use uuid::Uuid;

use serde_json::json;

use crate::harness::{Fixtures as _, Org};

fn note(entity: EntityKind, id: Uuid, subject: &str) -> NewActivity {
    NewActivity {
        kind: ActivityKind::Note,
        subject: subject.into(),
        related_entity: entity,
        related_id: id,
        ..Default::default()
    }
}

async fn activities_attach_to_records_of_the_same_organization(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let other = Org::new(&crm, "Other").await;
    let t = org.user(&crm);
    let account = t.account("Globex").await;
    let lead = t.lead("L").await;

    t.activities()
        .create(note(EntityKind::Account, account.id.uuid(), "Kickoff"))
        .await
        .unwrap();
    t.activities()
        .create(note(EntityKind::Lead, lead.id.uuid(), "Called"))
        .await
        .unwrap();
    // The id of an account under the wrong kind, another organization's record, a random id.
    let theirs = other.admin(&crm).account("T").await;
    for (entity, id) in [
        (EntityKind::Contact, account.id.uuid()),
        (EntityKind::Account, theirs.id.uuid()),
        (EntityKind::Invoice, Uuid::now_v7()),
    ] {
        let err = t
            .activities()
            .create(note(entity, id, "x"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{entity}: {err:?}");
    }

    // Activities attach to records with a timeline: never to another activity, and a patch
    // cannot move one there either.
    let on_activity = |id| note(EntityKind::Activity, id, "x");
    let kickoff = t.activities().list(&Default::default()).await.unwrap().data[0].id;
    let err = t
        .activities()
        .create(on_activity(kickoff.uuid()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].field == "related_entity" && e[0].code == "invalid_choice"),
        "{err:?}"
    );
    let err = t
        .activities()
        .update(
            kickoff,
            ActivityPatch {
                related_entity: Some(EntityKind::Activity),
                related_id: Some(kickoff.uuid()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].field == "related_entity"),
        "{err:?}"
    );

    // Tasks: due time, assignee, completion; other kinds have none of these.
    let task = t
        .activities()
        .create(NewActivity {
            kind: ActivityKind::Task,
            due_at: Some(chrono::Utc::now()),
            assignee_id: Some(org.user),
            ..note(EntityKind::Account, account.id.uuid(), "Send proposal")
        })
        .await
        .unwrap();
    let done = t.activities().complete(task.id).await.unwrap();
    assert!(done.completed_at.is_some());
    assert!(matches!(
        t.activities().complete(task.id).await,
        Err(Error::Conflict(_))
    ));
    assert!(
        t.activities()
            .reopen(task.id)
            .await
            .unwrap()
            .completed_at
            .is_none()
    );
    let n = t
        .activities()
        .create(note(EntityKind::Account, account.id.uuid(), "n"))
        .await
        .unwrap();
    assert!(matches!(
        t.activities().complete(n.id).await,
        Err(Error::Conflict(_))
    ));
    let err = t
        .update_json(n.id, json!({ "due_at": chrono::Utc::now() }))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].field == "due_at"),
        "{err:?}"
    );
}

async fn timeline_merges_activities_and_events(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let other = Org::new(&crm, "Other").await;
    let t = org.user(&crm);
    let account = t.account("Globex").await;
    t.activities()
        .create(note(EntityKind::Account, account.id.uuid(), "first"))
        .await
        .unwrap();
    t.accounts()
        .update(
            account.id,
            AccountPatch {
                city: Some(Some("Paris".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    t.activities()
        .create(note(EntityKind::Account, account.id.uuid(), "second"))
        .await
        .unwrap();

    let page = t
        .timeline(EntityKind::Account, account.id, 100, None)
        .await
        .unwrap();
    let kinds: Vec<String> = page
        .data
        .iter()
        .map(|i| match i {
            TimelineItem::Activity(a) => format!("activity:{}", a.subject),
            TimelineItem::Event(e) => format!("event:{}", e.action),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "activity:second",
            "event:updated",
            "activity:first",
            "event:created"
        ],
        "newest first"
    );

    // Pages of two.
    let first = t
        .timeline(EntityKind::Account, account.id, 2, None)
        .await
        .unwrap();
    let rest = t
        .timeline(
            EntityKind::Account,
            account.id,
            2,
            first.next_cursor.as_deref(),
        )
        .await
        .unwrap();
    let ids: Vec<_> = first
        .data
        .iter()
        .chain(&rest.data)
        .map(TimelineItem::id)
        .collect();
    assert_eq!(
        ids,
        page.data.iter().map(TimelineItem::id).collect::<Vec<_>>()
    );
    assert!(rest.next_cursor.is_none());

    // Another organization cannot read it.
    let err = other
        .admin(&crm)
        .timeline(EntityKind::Account, account.id, 10, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

crate::on_both_backends!(
    activities_attach_to_records_of_the_same_organization,
    timeline_merges_activities_and_events
);
