//! PostgreSQL row-level security: a query that forgets the tenant filter still sees one
//! organization only, and cannot write into another.

use crm_core::sqlx::{self, Connection as _, Executor as _, PgConnection};

use crate::harness::{self, Fixtures as _, Org};

async fn as_app_role(url: &str, org: Option<uuid::Uuid>) -> PgConnection {
    let mut conn = PgConnection::connect(url).await.unwrap();
    conn.execute("set role crm_app").await.unwrap();
    if let Some(org) = org {
        sqlx::query("select set_config('crm.org_id', $1, false)")
            .bind(org.to_string())
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn
}

#[tokio::test]
async fn rls_blocks_queries_that_omit_the_tenant_filter() {
    let Some((crm, url)) = harness::postgres_with_url().await else {
        return;
    };
    omitted_tenant_filters_are_blocked(&crm, &url).await;
}

/// With `crm`'s organizations, connections of the test's own to `url` as the application role:
/// a query without a tenant filter sees the bound organization only, and writes no other.
pub(crate) async fn omitted_tenant_filters_are_blocked(crm: &crm_core::Crm, url: &str) {
    let (a, b) = (Org::new(crm, "A").await, Org::new(crm, "B").await);
    for (org, n) in [(&a, 3), (&b, 5)] {
        for i in 0..n {
            org.admin(crm).account(&format!("n{i}")).await;
        }
    }

    // No filter on organization_id at all: the policy supplies it.
    let count = "select count(*) from accounts";
    let mut conn = as_app_role(url, Some(a.id.uuid())).await;
    let (n,): (i64,) = sqlx::query_as(count).fetch_one(&mut conn).await.unwrap();
    assert_eq!(n, 3, "only organization A's rows");
    let (n,): (i64,) = sqlx::query_as("select count(*) from events where organization_id <> $1")
        .bind(a.id.uuid())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        n, 0,
        "asking for other organizations explicitly finds nothing"
    );

    // Writing another organization's rows: updates touch nothing, inserts are refused.
    let updated = sqlx::query("update accounts set name = 'pwned'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 3);
    let insert = sqlx::query(
        "insert into accounts (organization_id, id, created_at, updated_at, name) values ($1, gen_random_uuid(), now(), now(), 'x')",
    )
    .bind(b.id.uuid())
    .execute(&mut conn)
    .await;
    let err = insert.unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    // The event log is append-only for the application role.
    assert!(
        sqlx::query("delete from events")
            .execute(&mut conn)
            .await
            .is_err()
    );

    // Without a tenant the application role sees nothing.
    let mut conn = as_app_role(url, None).await;
    let (n,): (i64,) = sqlx::query_as(count).fetch_one(&mut conn).await.unwrap();
    assert_eq!(n, 0);

    // B's rows are untouched.
    let mut conn = as_app_role(url, Some(b.id.uuid())).await;
    let (n,): (i64,) = sqlx::query_as("select count(*) from accounts where name <> 'pwned'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 5);
}

#[tokio::test]
async fn every_tenant_table_has_forced_rls() {
    let Some((_crm, url)) = harness::postgres_with_url().await else {
        return;
    };
    let mut conn = PgConnection::connect(&url).await.unwrap();
    // Every table with an organization_id column is a tenant table.
    let rows: Vec<(String, bool, bool, i64)> = sqlx::query_as(
        "select c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                (select count(*) from pg_policy p where p.polrelid = c.oid)
           from pg_class c
           join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = current_schema() and c.relkind = 'r'
            and exists (select 1 from pg_attribute a
                         where a.attrelid = c.oid and a.attname = 'organization_id' and not a.attisdropped)
          order by 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(rows.len() >= 4, "{rows:?}");
    for (table, enabled, forced, policies) in rows {
        assert!(
            enabled && forced && policies >= 1,
            "{table}: rls {enabled}, forced {forced}, {policies} policies"
        );
    }
}

/// Every table of the entity registry has the restrictive `record_visibility` policy of
/// migration `0018_record_visibility`, for reading and for the reader role alone, and nothing
/// else has it.
#[tokio::test]
async fn record_visibility_covers_every_entity() {
    let Some((_crm, url)) = harness::postgres_with_url().await else {
        return;
    };
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let rows: Vec<(String, String, bool, String)> = sqlx::query_as(
        "select tablename::text, cmd::text, permissive = 'RESTRICTIVE', roles::text from pg_policies
          where schemaname = current_schema() and policyname = 'record_visibility'
          order by 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut tables: Vec<&str> = crm_core::EntityKind::ALL
        .iter()
        .map(|k| k.table())
        .collect();
    tables.sort_unstable();
    let covered: Vec<&str> = rows.iter().map(|(t, _, _, _)| t.as_str()).collect();
    assert_eq!(covered, tables);
    for (table, cmd, restrictive, roles) in &rows {
        assert!(
            cmd == "SELECT" && *restrictive && roles == "{crm_reader}",
            "{table}: {cmd}, {restrictive}, {roles}"
        );
    }
}
