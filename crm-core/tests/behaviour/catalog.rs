//! The rules that keep the schema distributable by organization (Citus, see docs/scaling.md),
//! read from PostgreSQL's catalog: every tenant table (one with an `organization_id` column)
//! has forced row-level security with a policy, a primary key that leads with
//! `organization_id`, foreign keys to other tenant tables that lead with it on both sides, and
//! unique constraints and indexes that include it.

use crm_core::sqlx::{self, Connection as _, Executor as _, PgConnection};

use crate::harness;

/// A primary or foreign key: table, name, kind (`p`, `f`), columns, referenced table and columns.
type Key = (
    String,
    String,
    String,
    Vec<String>,
    Option<String>,
    Option<Vec<String>>,
);

/// The violations of the rules in the current schema, one line each.
async fn violations(conn: &mut PgConnection) -> Vec<String> {
    let tenant_tables: Vec<(String, bool, bool, i64)> = sqlx::query_as(
        "select c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                (select count(*) from pg_policy p where p.polrelid = c.oid)
           from pg_class c
           join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = current_schema() and c.relkind = 'r' and c.relname <> 'organizations'
            and exists (select 1 from pg_attribute a where a.attrelid = c.oid
                          and a.attname = 'organization_id' and not a.attisdropped)
          order by 1",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let tenant = |t: &str| tenant_tables.iter().any(|(name, ..)| name == t);
    let mut out = Vec::new();
    for (table, enabled, forced, policies) in &tenant_tables {
        if !(*enabled && *forced && *policies >= 1) {
            out.push(format!(
                "{table}: row-level security enabled {enabled}, forced {forced}, {policies} policies"
            ));
        }
    }

    // Primary and foreign keys, with their columns in order.
    let keys: Vec<Key> = sqlx::query_as(
            "select c.relname::text, con.conname::text, con.contype::text,
                    array(select a.attname::text from unnest(con.conkey) with ordinality k(n, i)
                            join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n
                           order by k.i),
                    f.relname::text,
                    case when con.contype = 'f' then
                        array(select a.attname::text from unnest(con.confkey) with ordinality k(n, i)
                                join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.n
                               order by k.i)
                    end
               from pg_constraint con
               join pg_class c on c.oid = con.conrelid
               join pg_namespace n on n.oid = c.relnamespace
               left join pg_class f on f.oid = con.confrelid
              where n.nspname = current_schema() and con.contype in ('p', 'f')
              order by 1, 2",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    let leads = |cols: &[String]| cols.first().is_some_and(|c| c == "organization_id");
    for (table, name, kind, cols, target, target_cols) in &keys {
        if !tenant(table) {
            continue;
        }
        match (kind.as_str(), target) {
            ("p", _) if !leads(cols) => {
                out.push(format!(
                    "{table}: primary key {name} {cols:?} does not lead with organization_id"
                ));
            }
            ("f", Some(target)) if tenant(target) => {
                let target_cols = target_cols.clone().unwrap_or_default();
                if !leads(cols) || !leads(&target_cols) {
                    out.push(format!(
                        "{table}: foreign key {name} {cols:?} -> {target} {target_cols:?} does not lead with organization_id"
                    ));
                }
            }
            _ => {}
        }
    }
    for (table, ..) in &tenant_tables {
        if !keys
            .iter()
            .any(|(t, _, kind, ..)| t == table && kind == "p")
        {
            out.push(format!("{table}: no primary key"));
        }
    }

    // Unique indexes (unique constraints are backed by one) other than the primary key.
    let uniques: Vec<(String, String, Vec<String>)> = sqlx::query_as(
        "select c.relname::text, i.relname::text,
                array(select a.attname::text from unnest(ix.indkey) k(n)
                        join pg_attribute a on a.attrelid = c.oid and a.attnum = k.n)
           from pg_index ix
           join pg_class i on i.oid = ix.indexrelid
           join pg_class c on c.oid = ix.indrelid
           join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = current_schema() and ix.indisunique and not ix.indisprimary
          order by 1, 2",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for (table, index, cols) in uniques {
        if tenant(&table) && !cols.iter().any(|c| c == "organization_id") {
            out.push(format!(
                "{table}: unique index {index} {cols:?} lacks organization_id"
            ));
        }
    }
    out
}

#[tokio::test]
async fn tenant_tables_are_distributable_by_organization() {
    let Some((_crm, url)) = harness::postgres_with_url().await else {
        return;
    };
    let mut conn = PgConnection::connect(&url).await.unwrap();
    assert_eq!(violations(&mut conn).await, Vec::<String>::new());

    // The check itself: tables breaking each rule are reported for each.
    conn.execute(
        "create table catalog_target (
             organization_id uuid not null references organizations (id),
             id uuid not null,
             primary key (organization_id, id),
             unique (id)
         );
         create table catalog_probe (
             organization_id uuid not null references organizations (id),
             id uuid not null,
             target_id uuid references catalog_target (id),
             email text,
             primary key (id)
         );
         create unique index catalog_probe_email on catalog_probe (email);",
    )
    .await
    .unwrap();
    let found = violations(&mut conn).await;
    for rule in [
        "row-level security",
        "primary key",
        "unique index",
        "foreign key",
    ] {
        assert!(
            found
                .iter()
                .any(|v| v.starts_with("catalog_") && v.contains(rule)),
            "{rule} not reported: {found:?}"
        );
    }
}
