//! The change feed: every change of an organization in commit order, tombstones without personal
//! data, and a cursor that never skips a transaction that commits late — attacked with a
//! writer held open across another's commit, and with concurrent writers and a poller.

use std::collections::HashSet;
use std::time::Duration;

use crm_core::auth::{ApiKeyScope, NewApiKey};
use crm_core::{Action, Change, Crm, Error, Tenant, TenantContext};
use serde_json::json;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::harness::{Fixtures as _, Org};

/// Reads the feed after `cursor` until caught up; answers the changes and the cursor to poll
/// from next.
async fn drain(
    t: &Tenant,
    mut cursor: Option<String>,
    limit: u32,
) -> (Vec<Change>, Option<String>) {
    let mut seen = Vec::new();
    loop {
        let page = t.changes().after(cursor.as_deref(), limit).await.unwrap();
        if let Some(last) = page.data.last() {
            cursor = Some(last.cursor.clone());
        }
        seen.extend(page.data);
        if page.next_cursor.is_none() {
            return (seen, cursor);
        }
    }
}

async fn the_feed_lists_every_change_in_commit_order(crm: Crm) {
    let org = Org::new(&crm, "Feed").await;
    let t = org.admin(&crm);
    let start = t.changes().head().await.unwrap();

    let a = t.account("Globex").await;
    t.update_json(a.id, json!({ "city": "Oslo" }))
        .await
        .unwrap();
    t.accounts().delete(a.id).await.unwrap();
    t.accounts().restore(a.id).await.unwrap();
    t.accounts().delete(a.id).await.unwrap();
    t.accounts().purge(a.id).await.unwrap();
    let ada = t
        .create_json::<crm_core::Contact>(
            json!({ "last_name": "Lovelace", "email": "ada@secret.test" }),
        )
        .await
        .unwrap();
    t.contacts().erase(ada.id).await.unwrap();

    let (all, _) = drain(&t, Some(start.clone()), 1_000).await;
    let actions: Vec<(Uuid, Action)> = all
        .iter()
        .map(|c| (c.event.record_id, c.event.action))
        .collect();
    let (a, ada) = (a.id.uuid(), ada.id.uuid());
    assert_eq!(
        actions,
        [
            (a, Action::Created),
            (a, Action::Updated),
            (a, Action::Deleted),
            (a, Action::Restored),
            (a, Action::Deleted),
            (a, Action::Purged),
            (ada, Action::Created),
            (ada, Action::Erased),
        ]
    );
    // Tombstones carry nothing, and the erased person is gone from every change.
    for c in &all[5..] {
        if matches!(c.event.action, Action::Purged | Action::Erased) {
            assert!(c.event.changes.is_empty(), "{c:?}");
        }
    }
    let text = serde_json::to_string(&all).unwrap();
    assert!(
        !text.contains("ada@secret.test") && !text.contains("Lovelace"),
        "{text}"
    );

    // Pages of one change read the same sequence; `next_cursor` is set only while more wait.
    let (one_by_one, end) = drain(&t, Some(start.clone()), 1).await;
    assert_eq!(one_by_one, all);
    let page = t.changes().after(end.as_deref(), 10).await.unwrap();
    assert!(
        page.data.is_empty() && page.next_cursor.is_none(),
        "{page:?}"
    );
    let page = t.changes().after(Some(&start), 3).await.unwrap();
    assert_eq!(
        page.next_cursor.as_deref(),
        Some(page.data[2].cursor.as_str())
    );

    // From the beginning, the organization's users come first; the head is the end.
    let (from_start, _) = drain(&t, None, 100).await;
    assert!(
        from_start.len() > all.len(),
        "the users created with the organization"
    );
    assert!(from_start.ends_with(&all));
    let head = t.changes().head().await.unwrap();
    assert!(
        t.changes()
            .after(Some(&head), 10)
            .await
            .unwrap()
            .data
            .is_empty()
    );
}

async fn only_admins_and_keys_read_the_feed_of_their_organization(crm: Crm) {
    let acme = Org::new(&crm, "Acme").await;
    let globex = Org::new(&crm, "Globex").await;
    acme.admin(&crm).account("Acme's").await;
    let theirs = globex.admin(&crm);

    let err = acme.user(&crm).changes().after(None, 10).await.unwrap_err();
    assert!(
        matches!(err, Error::Forbidden(ref r) if r.code == "admin_only"),
        "{err:?}"
    );
    let (key, _) = acme
        .admin(&crm)
        .api_keys()
        .create(NewApiKey {
            name: "feed".into(),
            scopes: vec![ApiKeyScope::Changes],
        })
        .await
        .unwrap();
    let key = crm.tenant(&TenantContext::api_key(acme.id, key.id.uuid()));
    let (by_key, _) = drain(&key, None, 100).await;
    assert!(by_key.iter().all(|c| c.event.organization_id == acme.id));
    assert!(by_key.iter().any(|c| c.event.entity == "account"));

    // Another organization's feed holds none of it, whatever cursor it is handed.
    let (mine, _) = drain(&theirs, None, 100).await;
    assert!(
        mine.iter().all(|c| c.event.organization_id == globex.id),
        "{mine:?}"
    );
    let acme_cursor = by_key.last().unwrap().cursor.clone();
    let (after, _) = drain(
        &theirs,
        Some("0.00000000000000000000000000000000".into()),
        100,
    )
    .await;
    assert_eq!(after, mine);
    let (after, _) = drain(&theirs, Some(acme_cursor), 100).await;
    assert!(after.iter().all(|c| c.event.organization_id == globex.id));

    for (after, limit) in [
        (Some("10"), 10),
        (Some("x.y"), 10),
        (None, 0),
        (None, 1_001),
    ] {
        let err = theirs.changes().after(after, limit).await.unwrap_err();
        assert!(matches!(err, Error::Validation(_)), "{err:?}");
    }
}

/// A transaction that started writing first but commits last: a reader that went by event id
/// (or transaction id) would have moved past it while it was open, and never seen it.
async fn a_late_commit_is_not_skipped(crm: Crm) {
    let org = Org::new(&crm, "Late").await;
    let t = org.admin(&crm);
    let start = t.changes().head().await.unwrap();

    let (written_tx, written) = oneshot::channel();
    let (commit_tx, commit) = oneshot::channel::<()>();
    let slow = tokio::spawn({
        let t = t.clone();
        async move {
            t.transaction(|t| async move {
                let early = t.account("Early").await;
                let _ = written_tx.send(early.id.uuid());
                let _ = commit.await;
                Ok(early.id.uuid())
            })
            .await
            .unwrap()
        }
    });
    let early_id = written.await.unwrap();
    // A second writer (on SQLite it queues behind the first's write lock; on PostgreSQL it
    // commits at once), and a reader that polls meanwhile.
    let fast = tokio::spawn({
        let t = t.clone();
        async move { t.account("Fast").await.id.uuid() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (first, cursor) = drain(&t, Some(start.clone()), 100).await;
    // What is still uncommitted is not listed yet (on PostgreSQL the fast one already is).
    assert!(
        first.iter().all(|c| c.event.record_id != early_id),
        "{first:?}"
    );
    commit_tx.send(()).unwrap();
    let early = slow.await.unwrap();
    let fast = fast.await.unwrap();
    let (second, _) = drain(&t, cursor.or(Some(start)), 100).await;

    let seen: Vec<Uuid> = first
        .iter()
        .chain(&second)
        .map(|c| c.event.record_id)
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen.iter().collect::<HashSet<_>>(),
        HashSet::from([&early, &fast])
    );
}

/// Writers commit concurrently (single creates, and units of several writes that sleep before
/// committing) while a reader polls: every event is seen exactly once, and each record's changes
/// in the order they were made.
async fn concurrent_writers_and_a_poller(crm: Crm) {
    let org = Org::new(&crm, "Busy").await;
    let t = org.admin(&crm);
    let start = t.changes().head().await.unwrap();
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let t = t.clone();
            tokio::spawn(async move {
                for i in 0..8 {
                    if (w + i) % 3 == 0 {
                        t.transaction(|t| async move {
                            let a = t.account(&format!("unit {w}.{i}")).await;
                            tokio::time::sleep(Duration::from_millis(15)).await;
                            t.update_json(a.id, json!({ "city": "Later" })).await?;
                            Ok(())
                        })
                        .await
                        .unwrap();
                    } else {
                        let a = t.account(&format!("single {w}.{i}")).await;
                        t.update_json(a.id, json!({ "city": "Now" })).await.unwrap();
                    }
                }
            })
        })
        .collect();
    let poller = tokio::spawn({
        let t = t.clone();
        async move {
            let mut cursor = Some(start);
            let mut seen = Vec::new();
            for _ in 0..40 {
                let (page, next) = drain(&t, cursor.clone(), 7).await;
                cursor = next.or(cursor);
                seen.extend(page);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (seen, cursor)
        }
    });
    for w in writers {
        w.await.unwrap();
    }
    let (mut seen, cursor) = poller.await.unwrap();
    seen.extend(drain(&t, cursor, 7).await.0);

    let ids: Vec<Uuid> = seen.iter().map(|c| c.event.id.uuid()).collect();
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an event was seen twice");
    assert_eq!(ids.len(), 6 * 8 * 2, "every create and update, once");
    let mut created = HashSet::new();
    for c in &seen {
        match c.event.action {
            Action::Created => assert!(created.insert(c.event.record_id)),
            Action::Updated => {
                assert!(created.contains(&c.event.record_id), "update before create")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A retention sweep deletes whole commits before a time; readers behind the horizon are told,
/// readers at or past it go on; only the system may sweep.
async fn retention_expires_old_commits_and_the_cursors_behind_them(crm: Crm) {
    let org = Org::new(&crm, "Retention").await;
    let admin = org.admin(&crm);
    let system = crm.tenant(&TenantContext::system(org.id));
    let start = admin.changes().head().await.unwrap();
    admin.account("Old").await;
    let (old, after_old) = drain(&admin, Some(start.clone()), 100).await;
    assert_eq!(old.len(), 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let boundary = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    admin.account("New").await;

    let err = admin.changes().expire_before(boundary).await.unwrap_err();
    assert!(
        matches!(&err, Error::Forbidden(r) if r.code == "system_only"),
        "{err:?}"
    );
    let expired = system.changes().expire_before(boundary).await.unwrap();
    assert!(expired.events >= 1, "{expired:?}");
    assert_eq!(
        system
            .changes()
            .expire_before(boundary)
            .await
            .unwrap()
            .events,
        0
    );

    // From the beginning: what is kept. From the cursor that read the last deleted change:
    // nothing was missed. From before it: told so.
    let (kept, _) = drain(&admin, None, 100).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].event.changes["name"]["after"], "New");
    let (rest, _) = drain(&admin, after_old, 100).await;
    assert_eq!(rest.len(), 1);
    let err = admin.changes().after(Some(&start), 100).await.unwrap_err();
    assert!(
        matches!(&err, Error::Gone(r) if r.code == "cursor_expired"),
        "{err:?}"
    );
    // The event log lost the same rows: the record's history starts after the horizon.
    let head = admin.changes().head().await.unwrap();
    assert!(drain(&admin, Some(head), 100).await.0.is_empty());
}

crate::on_both_backends!(
    retention_expires_old_commits_and_the_cursors_behind_them,
    the_feed_lists_every_change_in_commit_order,
    only_admins_and_keys_read_the_feed_of_their_organization,
);

/// Writers and readers on connections of their own, on two threads: PostgreSQL, and an SQLite
/// file (the in-memory database has a single connection, which serializes everything).
async fn late_and_concurrent_commits(crm: Crm) {
    a_late_commit_is_not_skipped(crm.clone()).await;
    concurrent_writers_and_a_poller(crm).await;
}

mod postgres_concurrency {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_commit_is_skipped() {
        if let Some(crm) = crate::harness::postgres().await {
            super::late_and_concurrent_commits(crm).await;
        }
    }
}

mod sqlite_file {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_commit_is_skipped() {
        let name = format!("crm-feed-{}.db", Uuid::now_v7().simple());
        let path = std::env::temp_dir().join(name);
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let crm = Crm::connect(&url).await.expect("SQLite file");
        late_and_concurrent_commits(crm.clone()).await;
        crm.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
