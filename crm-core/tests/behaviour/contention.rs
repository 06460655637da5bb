//! Writes that lose a race with another writer (a PostgreSQL deadlock, SQLite busy) are run
//! again by the library, and answered [`Error::Unavailable`] (HTTP 503) only when they keep
//! losing: never as a storage error (HTTP 500).

use std::time::{Duration, Instant};

use crm_core::sqlx::{self, Connection as _, Executor as _};
use crm_core::{
    AccountPatch, Crm, Error, NewAccount, NewOrganization, PoolSettings, TenantContext,
};

use crate::harness;

/// SQLite: a write meets a database another process holds the write lock of. It waits the busy
/// timeout, fails busy, and is run again: it succeeds once the lock is let go, and answers
/// `Unavailable` (a contention) when it never is.
#[tokio::test]
async fn a_write_waits_out_a_busy_sqlite_database() {
    let path = std::env::temp_dir().join(format!("crm-busy-{}.db", uuid::Uuid::now_v7()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let busy_timeout = Duration::from_millis(200);
    let crm = Crm::builder()
        .database_url(&url)
        .pool(PoolSettings {
            acquire_timeout: busy_timeout,
            ..PoolSettings::default()
        })
        .build()
        .await
        .unwrap();
    let org = crm
        .organizations()
        .create(NewOrganization {
            name: "Busy".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let t = crm.tenant(&TenantContext::system(org.id));
    let new = || NewAccount {
        name: "Globex".into(),
        ..Default::default()
    };

    // Another process writes for longer than the busy timeout, then lets go.
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    other.execute("begin immediate").await.unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(busy_timeout * 2).await;
        other.execute("commit").await.unwrap();
        other
    });
    let started = Instant::now();
    t.accounts()
        .create(new())
        .await
        .expect("the write is run again once the database is free");
    assert!(
        started.elapsed() >= busy_timeout,
        "the first run met the lock"
    );

    // Held for good: the write keeps losing and says so.
    let mut other = release.await.unwrap();
    other.execute("begin immediate").await.unwrap();
    let err = t.accounts().create(new()).await.unwrap_err();
    assert!(
        matches!(err, Error::Unavailable(_)) && err.is_contention(),
        "{err:?}"
    );
    other.execute("rollback").await.unwrap();
    drop(other);
    crm.close().await;
    let _ = std::fs::remove_file(&path);
}

/// PostgreSQL: an update of an account deadlocks with another session (which holds the
/// organization's change-feed head that the update's commit needs, and then asks for the
/// account's row). PostgreSQL breaks the cycle by failing the library's transaction (its
/// `deadlock_timeout` runs out first); the library runs the update again, and it succeeds.
#[tokio::test]
async fn postgres_a_deadlocked_write_is_run_again() {
    let Some((crm, url)) = harness::postgres_with_url().await else {
        return;
    };
    let org = crm
        .organizations()
        .create(NewOrganization {
            name: "Deadlock".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let t = crm.tenant(&TenantContext::system(org.id));
    let account = t
        .accounts()
        .create(NewAccount {
            name: "Globex".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
    // The other session waits long before it looks for a deadlock: the library's does first,
    // and its transaction is the one PostgreSQL fails.
    other.execute("set deadlock_timeout = '20s'").await.unwrap();
    other.execute("begin").await.unwrap();
    sqlx::query("select set_config('crm.org_id', $1, true)")
        .bind(org.id.to_string())
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("update feed_heads set position = position where organization_id = $1")
        .bind(org.id.uuid())
        .execute(&mut other)
        .await
        .unwrap();

    let writer = {
        let t = t.clone();
        tokio::spawn(async move {
            let patch = AccountPatch {
                industry: Some(Some("Energy".into())),
                ..Default::default()
            };
            t.accounts().update(account.id, patch).await
        })
    };
    // Once the library's update holds the account and waits at its commit for the feed head,
    // the other session asks for the account: a cycle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::query("select id from accounts where organization_id = $1 and id = $2 for update")
        .bind(org.id.uuid())
        .bind(account.id.uuid())
        .fetch_one(&mut other)
        .await
        .expect("the library's transaction was the one undone");
    other.execute("commit").await.unwrap();

    let updated = writer
        .await
        .unwrap()
        .expect("the library ran the update again");
    assert_eq!(updated.industry.as_deref(), Some("Energy"));
    assert_eq!(updated.version, account.version + 1, "written once");
}
