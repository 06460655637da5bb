//! Through PgBouncer (`.ci/pgbouncer` starts one instance per pool mode): in session mode every
//! tenancy guarantee holds, with fewer server connections than clients so that server
//! connections pass from one client to the next; transaction mode, where the session-level
//! tenant binding would pass between clients, is refused before anything runs through it.

use crm_core::{Crm, Error, PoolSettings};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::harness::{self, PoolMode};
use crate::tenancy;

/// Connects to `url` (migrating) with a pool of `connections`.
async fn connect(url: &str, connections: u32) -> crm_core::Result<Crm> {
    let pool = PoolSettings {
        max_connections: connections,
        ..PoolSettings::default()
    };
    Crm::builder().database_url(url).pool(pool).build().await
}

mod pgbouncer_session {
    use super::*;

    /// The tenancy property test (`tenancy.rs`), each case with a new client pool: the server
    /// connections the previous case's clients were bound on serve the next one.
    #[test]
    fn no_operation_crosses_organizations() {
        let rt = tenancy::runtime();
        let Some((pooled, direct)) = rt.block_on(harness::pgbouncer_database(PoolMode::Session))
        else {
            return;
        };
        rt.block_on(async {
            connect(&pooled, 2)
                .await
                .expect("migrate through PgBouncer");
            harness::record_backend("pgbouncer");
        });
        proptest!(ProptestConfig::with_cases(8), |(steps in vec(tenancy::step(), 1..60))| {
            rt.block_on(async {
                let crm = connect(&pooled, 3).await.expect("connect through PgBouncer");
                tenancy::run_case(crm.clone(), steps).await;
                crm.close().await;
            });
        });
        rt.block_on(harness::drop_database(&direct));
    }

    /// Row-level security holds on connections through the pooler, on server connections the
    /// library's own pool used before (the test's connections are opened after it closed).
    #[tokio::test]
    async fn rls_blocks_queries_that_omit_the_tenant_filter() {
        let Some((pooled, direct)) = harness::pgbouncer_database(PoolMode::Session).await else {
            return;
        };
        let crm = connect(&pooled, 4)
            .await
            .expect("migrate through PgBouncer");
        harness::record_backend("pgbouncer");
        crate::rls::omitted_tenant_filters_are_blocked(&crm, &pooled).await;
        crm.close().await;
        harness::drop_database(&direct).await;
    }
}

mod pgbouncer_transaction {
    use super::*;

    /// A transaction-mode pooler is refused with a message that names it, before a migration
    /// (whose advisory lock is session state too) ran through it.
    #[tokio::test]
    async fn is_refused_before_anything_runs() {
        let Some((pooled, direct)) = harness::pgbouncer_database(PoolMode::Transaction).await
        else {
            return;
        };
        for migrate in [true, false] {
            let refused = Crm::builder()
                .database_url(&pooled)
                .migrate(migrate)
                .build()
                .await
                .expect_err("a transaction-mode pooler is refused");
            harness::record_backend("pgbouncer");
            let Error::Config(why) = &refused else {
                panic!("not a configuration error: {refused:?}");
            };
            assert!(
                why.contains("pool_mode=transaction") && why.contains("pool_mode=session"),
                "{why}"
            );
        }
        let migrated =
            harness::ask(&direct, "select to_regclass('_crm_migrations') is not null").await;
        assert!(!migrated, "nothing ran through the pooler");
        harness::drop_database(&direct).await;
    }
}
