//! Units of work (`Tenant::transaction`): the typed services of one organization sharing one
//! transaction, committed or rolled back as a whole, each call in a savepoint of its own.

use std::time::Duration;

use crm_core::{Crm, Error, NewAccount, NewContact};

use crate::harness::{Fixtures as _, Org};

fn account(name: &str) -> NewAccount {
    NewAccount {
        name: name.into(),
        ..Default::default()
    }
}

async fn a_unit_commits_every_write_or_none(crm: Crm) {
    let org = Org::new(&crm, "Units").await;
    let t = org.user(&crm);

    let (a, c) = t
        .transaction(|t| async move {
            let a = t.accounts().create(account("Kept")).await?;
            let c = t
                .contacts()
                .create(NewContact {
                    last_name: Some("Kept".into()),
                    account_id: Some(a.id),
                    ..Default::default()
                })
                .await?;
            Ok((a, c))
        })
        .await
        .unwrap();
    assert_eq!(t.contacts().get(c.id).await.unwrap().account_id, Some(a.id));
    assert_eq!(
        t.events()
            .for_record("account", a.id, 10, None)
            .await
            .unwrap()
            .data
            .len(),
        1
    );

    let mut created = None;
    let out: crm_core::Result<()> = t
        .transaction(|t| {
            let created = &mut created;
            async move {
                *created = Some(t.accounts().create(account("Undone")).await?.id);
                Err(Error::Conflict("changed my mind".into()))
            }
        })
        .await;
    assert!(matches!(out, Err(Error::Conflict(_))), "{out:?}");
    let id = created.expect("created inside the unit");
    assert!(
        matches!(t.accounts().get(id).await, Err(Error::NotFound { .. })),
        "a unit that fails leaves nothing"
    );
    assert!(
        t.events()
            .for_record("account", id, 10, None)
            .await
            .unwrap()
            .data
            .is_empty(),
        "nor its events"
    );
}

/// A call that fails inside a unit undoes only itself (on PostgreSQL a failed statement would
/// otherwise abort the whole transaction), and the unit can go on and commit.
async fn a_failed_call_undoes_only_itself(crm: Crm) {
    let org = Org::new(&crm, "Savepoints").await;
    let t = org.admin(&crm);
    let linked = t.account("Linked").await;
    let contact = t
        .contacts()
        .create(NewContact {
            last_name: Some("Holds".into()),
            account_id: Some(linked.id),
            ..Default::default()
        })
        .await
        .unwrap();

    let kept = t
        .transaction(|t| async move {
            // A foreign-key violation in the database, not a check before it.
            let purge = t.accounts().purge(linked.id).await;
            assert!(matches!(purge, Err(Error::Conflict(_))), "{purge:?}");
            let invalid = t.accounts().create(account(" ")).await;
            assert!(matches!(invalid, Err(Error::Validation(_))));
            t.accounts().create(account("After the failures")).await
        })
        .await
        .unwrap();
    t.accounts().get(kept.id).await.unwrap();
    t.accounts().get(linked.id).await.unwrap();
    t.contacts().get(contact.id).await.unwrap();
}

async fn a_nested_unit_is_a_savepoint(crm: Crm) {
    let org = Org::new(&crm, "Nested").await;
    let t = org.user(&crm);
    let (outer, inner) = t
        .transaction(|t| async move {
            let outer = t.accounts().create(account("Outer")).await?;
            let mut inner = None;
            let failed: crm_core::Result<()> = t
                .transaction(|t| {
                    let inner = &mut inner;
                    async move {
                        *inner = Some(t.accounts().create(account("Inner")).await?.id);
                        Err(Error::Conflict("undo the inner unit".into()))
                    }
                })
                .await;
            assert!(failed.is_err());
            Ok((outer.id, inner.expect("created")))
        })
        .await
        .unwrap();
    t.accounts().get(outer).await.unwrap();
    assert!(matches!(
        t.accounts().get(inner).await,
        Err(Error::NotFound { .. })
    ));
}

/// A handle kept past its unit does not write outside it; a unit whose future is dropped
/// midway rolls back and gives its connection back clean (on SQLite in memory, the only one).
async fn units_end_cleanly(crm: Crm) {
    let org = Org::new(&crm, "Ends").await;
    let t = org.user(&crm);
    let kept = t.transaction(|t| async move { Ok(t) }).await.unwrap();
    assert!(matches!(
        kept.accounts().create(account("Late")).await,
        Err(Error::Conflict(_))
    ));

    let mut created = None;
    let cancelled = tokio::time::timeout(
        Duration::from_millis(500),
        t.transaction(|t| {
            let created = &mut created;
            async move {
                *created = Some(t.accounts().create(account("Cancelled")).await?.id);
                std::future::pending::<()>().await;
                Ok(())
            }
        }),
    )
    .await;
    assert!(cancelled.is_err(), "timed out");
    let id = created.expect("created before the cancel");
    // The rollback runs on a task of its own; the next write waits for the connection.
    for _ in 0..50 {
        if t.accounts().create(account("Next")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(
        t.accounts().get(id).await,
        Err(Error::NotFound { .. })
    ));
    t.accounts().create(account("Works")).await.unwrap();
}

/// How crm-axum runs a create under an `Idempotency-Key`: the create and its remembered
/// response commit together. A failure after the create (storing the response, or anything
/// else) undoes the create too, so the retry that follows creates exactly one record.
async fn an_idempotent_create_and_its_response_commit_together(crm: Crm) {
    use crm_core::auth::{Begin, StoredResponse};
    let org = Org::new(&crm, "Idempotent").await;
    let t = org.user(&crm);
    let ttl = Duration::from_secs(60);
    let response = |body: String| StoredResponse {
        status: 201,
        headers: "{}".into(),
        body,
    };

    assert_eq!(
        t.idempotency().begin("k1", "fp", ttl).await.unwrap(),
        Begin::Started
    );
    let failed: crm_core::Result<()> = t
        .transaction(|t| async move {
            t.accounts().create(account("Once")).await?;
            // The process fails before the response is stored.
            Err(Error::Internal(
                "lost between the create and its completion".into(),
            ))
        })
        .await;
    assert!(failed.is_err());
    t.idempotency().release("k1").await.unwrap();
    let none = crm_core::ListQuery::default().filter("name", crm_core::Op::Eq, "Once");
    assert!(t.accounts().list(&none).await.unwrap().data.is_empty());

    // The retry runs again and this time completes.
    assert_eq!(
        t.idempotency().begin("k1", "fp", ttl).await.unwrap(),
        Begin::Started
    );
    let id = t
        .transaction(|t| async move {
            let a = t.accounts().create(account("Once")).await?;
            t.idempotency()
                .complete("k1", &response(a.id.to_string()))
                .await?;
            Ok(a.id)
        })
        .await
        .unwrap();
    let Begin::Replay(stored) = t.idempotency().begin("k1", "fp", ttl).await.unwrap() else {
        panic!("a completed key replays");
    };
    assert_eq!(stored.body, id.to_string());
    assert_eq!(t.accounts().list(&none).await.unwrap().data.len(), 1);
}

crate::on_both_backends!(
    a_unit_commits_every_write_or_none,
    a_failed_call_undoes_only_itself,
    a_nested_unit_is_a_savepoint,
    units_end_cleanly,
    an_idempotent_create_and_its_response_commit_together,
);
