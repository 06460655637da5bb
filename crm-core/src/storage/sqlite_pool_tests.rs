//! Unit tests of `sqlite.rs`, in a module of their own: a test path with a `sqlite` segment
//! is taken by the CI's backend gate for one half of a SQLite/PostgreSQL pair, and these have
//! no PostgreSQL twin.
//! The SQLite pool itself: waits and timeouts counted, a connection given back clean, closing.
//! (Behaviour tests live in `tests/`, on both backends.)
use std::time::{Duration, Instant};

use super::sqlite::*;
use crate::error::Error;
use crate::storage::{PoolSettings, Sql};

/// A database file of its own in the temp directory, removed on drop.
struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new() -> Self {
        let name = format!("crm-pool-{}.db", uuid::Uuid::now_v7().simple());
        Self(std::env::temp_dir().join(name))
    }
    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

fn one_connection(acquire_timeout_ms: u64) -> PoolSettings {
    PoolSettings {
        max_connections: 1,
        acquire_timeout: Duration::from_millis(acquire_timeout_ms),
        ..PoolSettings::default()
    }
}

async fn create_t(c: &mut SqliteConn) {
    c.conn()
        .execute(&Sql::new("create table t (x integer)"))
        .await
        .unwrap();
}

async fn count(c: &mut SqliteConn) -> i64 {
    let (n,): (i64,) = c
        .conn()
        .fetch_one(&Sql::new("select count(*) from t"))
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn a_file_opens_in_wal_mode_with_foreign_keys() {
    let db = TempDb::new();
    let pool = connect(&db.url(), &PoolSettings::default()).await.unwrap();
    assert_eq!(pool.stats().connections, 1, "the first connection is kept");
    let mut c = pool.acquire().await.unwrap();
    let (mode,): (String,) = c
        .conn()
        .fetch_one(&Sql::new("pragma journal_mode"))
        .await
        .unwrap();
    let (keys,): (i64,) = c
        .conn()
        .fetch_one(&Sql::new("pragma foreign_keys"))
        .await
        .unwrap();
    assert_eq!((mode.as_str(), keys), ("wal", 1));
}

#[tokio::test]
async fn a_path_that_cannot_be_opened_fails_at_connect() {
    let url = format!(
        "sqlite://{}/no-such-dir-{}/x.db",
        std::env::temp_dir().display(),
        uuid::Uuid::now_v7().simple()
    );
    let started = Instant::now();
    assert!(connect(&url, &PoolSettings::default()).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_in_memory_database_is_one_connection_kept() {
    let pool = connect("sqlite::memory:", &PoolSettings::default())
        .await
        .unwrap();
    let mut c = pool.acquire().await.unwrap();
    create_t(&mut c).await;
    drop(c);
    let s = pool.stats();
    assert_eq!((s.connections, s.idle, s.max_connections), (1, 1, 1));
    let mut c = pool.acquire().await.unwrap();
    assert_eq!(count(&mut c).await, 0, "the same database");
}

#[tokio::test]
async fn checkouts_that_wait_or_time_out_are_counted() {
    let db = TempDb::new();
    let pool = connect(&db.url(), &one_connection(200)).await.unwrap();
    let held = pool.acquire().await.unwrap();
    let timed_out = pool.acquire().await;
    assert!(
        matches!(
            timed_out,
            Err(Error::Unavailable(sqlx::Error::PoolTimedOut))
        ),
        "{timed_out:?}"
    );
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.acquire().await.map(drop) }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(pool.stats().pending, Some(1));
    drop(held);
    waiter.await.unwrap().unwrap();
    let s = pool.stats();
    assert_eq!(
        (s.waits, s.timeouts, s.pending),
        (Some(1), Some(1), Some(0))
    );
}

#[tokio::test]
async fn an_abandoned_transaction_is_rolled_back_before_the_connection_serves_again() {
    let db = TempDb::new();
    let pool = connect(&db.url(), &one_connection(2_000)).await.unwrap();
    let mut c = pool.acquire().await.unwrap();
    create_t(&mut c).await;
    let mut tx = c.begin().await.unwrap();
    tx.conn()
        .execute(&Sql::new("insert into t values (1)"))
        .await
        .unwrap();
    drop(tx);
    drop(c);
    // The one connection again: out of the transaction, and able to begin another.
    let mut c = pool.acquire().await.unwrap();
    assert_eq!(count(&mut c).await, 0);
    let tx = c.begin().await.unwrap();
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn a_discarded_connection_is_closed_and_replaced() {
    let db = TempDb::new();
    let pool = connect(&db.url(), &PoolSettings::default()).await.unwrap();
    let c = pool.acquire().await.unwrap();
    c.discard();
    drop(c);
    assert_eq!(pool.stats().connections, 0);
    let mut c = pool.acquire().await.unwrap();
    let (one,): (i64,) = c.conn().fetch_one(&Sql::new("select 1")).await.unwrap();
    assert_eq!(one, 1);
}

#[tokio::test]
async fn close_waits_for_connections_in_use_and_refuses_new_ones() {
    let db = TempDb::new();
    let pool = connect(&db.url(), &PoolSettings::default()).await.unwrap();
    let (a, b) = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
    drop(a);
    assert_eq!((pool.stats().connections, pool.stats().idle), (2, 1));
    let closing = tokio::spawn({
        let pool = pool.clone();
        async move { pool.close().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!closing.is_finished(), "a connection is still in use");
    assert_eq!(pool.stats().connections, 1, "the idle one is closed");
    assert!(matches!(
        pool.acquire().await,
        Err(Error::Unavailable(sqlx::Error::PoolClosed))
    ));
    drop(b);
    tokio::time::timeout(Duration::from_secs(2), closing)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pool.stats().connections, 0);
}

/// A statement that counts far (seconds of work on any machine).
fn slow() -> Sql {
    Sql::new(
        "with recursive n(x) as (select 1 union all select x + 1 from n where x < 10000000000) \
         select count(*) from n",
    )
}

#[tokio::test]
async fn a_statement_past_the_statement_timeout_is_interrupted_as_unavailable() {
    let db = TempDb::new();
    let settings = PoolSettings {
        statement_timeout: Some(Duration::from_millis(50)),
        ..one_connection(2_000)
    };
    let pool = connect(&db.url(), &settings).await.unwrap();
    let mut c = pool.acquire().await.unwrap();
    create_t(&mut c).await;

    // Inside a transaction that wrote: interrupted, and the write is undone.
    let started = Instant::now();
    let mut tx = c.begin().await.unwrap();
    tx.conn()
        .execute(&Sql::new("insert into t values (1)"))
        .await
        .unwrap();
    let slow_one = tokio::time::timeout(
        Duration::from_secs(10),
        tx.conn().fetch_one::<(i64,)>(&slow()),
    )
    .await
    .expect("the statement timeout interrupts it");
    assert!(
        matches!(slow_one, Err(Error::Unavailable(_))),
        "{slow_one:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let _ = tx.rollback().await;
    drop(c);
    assert_eq!(
        pool.stats().connections,
        0,
        "the interrupted connection is dropped"
    );

    // The connection it left is not reused; the next statements run as ever, each with its
    // own deadline (together they take longer than one timeout).
    let mut c = pool.acquire().await.unwrap();
    assert_eq!(count(&mut c).await, 0);
    let mut tx = c.begin().await.unwrap();
    for _ in 0..20 {
        tx.conn()
            .execute(&Sql::new("insert into t values (2)"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tx.settle(Ok(())).await.unwrap();
    assert_eq!(count(&mut c).await, 20);
}
