//! Full-text search: prefixes of every word, across the searchable kinds, one organization
//! only, a write found at once, the trash and erased people never, paged without a cap; and the
//! index the migrations built covers exactly the columns the registry marks searchable.

use std::collections::{BTreeSet, HashSet};

use crm_core::sqlx::{self, Connection as _};
use crm_core::{Contact, Crm, EntityKind, Error, SearchHit, SearchQuery, Tenant, TenantContext};
use serde_json::json;
use uuid::Uuid;

use crate::harness::{self, Fixtures as _, Org};

/// The hits of `q` (first page of 100) in `t`, as (kind, title).
async fn found(t: &Tenant, q: &str, kinds: &[EntityKind]) -> Vec<(EntityKind, String)> {
    hits(t, q, kinds)
        .await
        .into_iter()
        .map(|h| (h.kind, h.title))
        .collect()
}

async fn hits(t: &Tenant, q: &str, kinds: &[EntityKind]) -> Vec<SearchHit> {
    let query = SearchQuery {
        q: q.into(),
        kinds: kinds.to_vec(),
        limit: Some(100),
        cursor: None,
    };
    let page = t.search(&query).await.unwrap();
    assert!(page.next_cursor.is_none());
    page.data
}

async fn words_are_found_by_prefix_in_every_searchable_kind(crm: Crm) {
    let org = Org::new(&crm, "Search").await;
    let t = org.admin(&crm);
    t.create_json::<crm_core::Account>(
        json!({"name": "Lovelace Analytics", "domain": "analytical.example"}),
    )
    .await
    .unwrap();
    let ada: crm_core::Record<Contact> = t
        .create_json(json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@engines.example", "title": "Countess"}))
        .await
        .unwrap();
    t.create_json::<crm_core::Lead>(
        json!({"first_name": "Adam", "last_name": "Lovell", "company": "Difference Ltd"}),
    )
    .await
    .unwrap();
    t.create_json::<crm_core::Opportunity>(
        json!({"name": "Engines renewal", "description": "Lovelace's notes, translated"}),
    )
    .await
    .unwrap();
    t.create_json::<crm_core::Contact>(json!({"first_name": "Charles", "last_name": "Babbage"}))
        .await
        .unwrap();

    let kinds = |hits: &[(EntityKind, String)]| hits.iter().map(|h| h.0).collect::<BTreeSet<_>>();
    let all = found(&t, "lov", &[]).await;
    assert_eq!(
        kinds(&all),
        BTreeSet::from([
            EntityKind::Account,
            EntityKind::Contact,
            EntityKind::Lead,
            EntityKind::Opportunity
        ]),
        "{all:?}"
    );
    // Every word must match, each as a prefix, in any searchable column.
    assert_eq!(
        found(&t, "ada LOV", &[]).await.len(),
        2,
        "Ada Lovelace and Adam Lovell"
    );
    assert_eq!(
        found(&t, "Ada Lovelace", &[]).await,
        [(
            EntityKind::Contact,
            "Ada Lovelace ada@engines.example".to_owned()
        )]
    );
    // Emails and domains count as their parts; job titles and descriptions are searched.
    let only = [
        (EntityKind::Contact, &["engines.example", "countess"][..]),
        (EntityKind::Account, &["analytical"]),
        (EntityKind::Lead, &["difference"]),
        (EntityKind::Opportunity, &["translated"]),
    ];
    for (kind, queries) in only {
        for q in queries {
            let hits = kinds(&found(&t, q, &[]).await);
            assert_eq!(hits, BTreeSet::from([kind]), "{q}");
        }
    }
    assert_eq!(
        found(&t, "lov", &[EntityKind::Contact, EntityKind::Lead])
            .await
            .len(),
        2
    );
    assert!(found(&t, "zzz", &[]).await.is_empty());
    assert!(found(&t, "ada babbage", &[]).await.is_empty());
    // The hit names the record to read.
    let hit = &hits(&t, "countess", &[]).await[0];
    assert_eq!(hit.id, ada.id.uuid());
    assert!(hit.rank > 0.0, "{hit:?}");
}

async fn a_write_is_found_at_once_the_trash_and_the_erased_never(crm: Crm) {
    let org = Org::new(&crm, "Writes").await;
    let t = org.admin(&crm);
    let grace = t.contact("Hopper").await;
    assert_eq!(found(&t, "hopper", &[]).await.len(), 1);

    t.update_json(grace.id, json!({"last_name": "Murray"}))
        .await
        .unwrap();
    assert!(found(&t, "hopper", &[]).await.is_empty());
    assert_eq!(found(&t, "murray", &[]).await.len(), 1);

    t.contacts().delete(grace.id).await.unwrap();
    assert!(
        found(&t, "murray", &[]).await.is_empty(),
        "the trash is not searched"
    );
    t.contacts().restore(grace.id).await.unwrap();
    assert_eq!(found(&t, "murray", &[]).await.len(), 1);

    t.contacts().erase(grace.id).await.unwrap();
    assert!(found(&t, "murray", &[]).await.is_empty());

    let lead = t.lead("Purged").await;
    t.leads().delete(lead.id).await.unwrap();
    t.leads().purge(lead.id).await.unwrap();
    assert!(found(&t, "purged", &[]).await.is_empty());

    // A write inside a unit of work is searchable inside it, and gone if it rolls back.
    let seen = t
        .transaction(|t| async move {
            t.contact("Uncommitted").await;
            let seen = found(&t, "uncommitted", &[]).await.len();
            Err::<(), _>(Error::invalid("x", "rollback", format!("{seen}")))
        })
        .await
        .unwrap_err();
    let Error::Validation(e) = seen else {
        panic!("{seen:?}")
    };
    assert_eq!(e[0].message, "1");
    assert!(found(&t, "uncommitted", &[]).await.is_empty());
}

async fn each_organization_finds_its_own_records_only(crm: Crm) {
    let (a, b) = (Org::new(&crm, "A").await, Org::new(&crm, "B").await);
    let (ta, tb) = (a.admin(&crm), b.admin(&crm));
    let mine = ta.contact("Shared Name").await;
    tb.contact("Shared Name").await;
    tb.account("Shared Name Inc").await;
    let hits = hits(&ta, "shared", &[]).await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, mine.id.uuid());
    // A plain user of A searches A's records too; the system context as well.
    assert_eq!(found(&a.user(&crm), "shared", &[]).await.len(), 1);
    let system = crm.tenant(&TenantContext::system(b.id));
    assert_eq!(found(&system, "shared", &[]).await.len(), 2);
}

async fn pages_run_to_the_last_hit_without_repeats(crm: Crm) {
    let org = Org::new(&crm, "Pages").await;
    let t = org.admin(&crm);
    let mut made = HashSet::new();
    for i in 0..23 {
        // Some rank higher than others: the name twice.
        let name = if i % 3 == 0 { "pager pager" } else { "pager" };
        let c: crm_core::Record<Contact> = t
            .create_json(json!({"first_name": name, "last_name": format!("n{i}")}))
            .await
            .unwrap();
        made.insert(c.id.uuid());
    }
    t.account("Pager Accounts").await;
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = t
            .search(&SearchQuery {
                q: "pager".into(),
                kinds: vec![],
                limit: Some(5),
                cursor: cursor.clone(),
            })
            .await
            .unwrap();
        assert!(page.data.len() <= 5);
        seen.extend(page.data);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 24);
    let ids: HashSet<Uuid> = seen.iter().map(|h| h.id).collect();
    assert_eq!(ids.len(), 24, "no hit twice");
    assert!(made.is_subset(&ids));
    assert!(
        seen.windows(2).all(|w| w[0].rank >= w[1].rank),
        "best first: {:?}",
        seen.iter().map(|h| h.rank).collect::<Vec<_>>()
    );
}

async fn bad_searches_say_why(crm: Crm) {
    let org = Org::new(&crm, "Bad").await;
    let t = org.admin(&crm);
    let long = "a".repeat(201);
    let many = "a ".repeat(17);
    for (query, field, code) in [
        (
            SearchQuery {
                q: "".into(),
                ..Default::default()
            },
            "q",
            "required",
        ),
        (
            SearchQuery {
                q: "!?*:&|".into(),
                ..Default::default()
            },
            "q",
            "required",
        ),
        (
            SearchQuery {
                q: long,
                ..Default::default()
            },
            "q",
            "too_long",
        ),
        (
            SearchQuery {
                q: many,
                ..Default::default()
            },
            "q",
            "too_many_terms",
        ),
        (
            SearchQuery {
                q: "a".into(),
                limit: Some(0),
                ..Default::default()
            },
            "limit",
            "out_of_range",
        ),
        (
            SearchQuery {
                q: "a".into(),
                limit: Some(101),
                ..Default::default()
            },
            "limit",
            "out_of_range",
        ),
        (
            SearchQuery {
                q: "a".into(),
                kinds: vec![EntityKind::Invoice],
                ..Default::default()
            },
            "kinds",
            "not_searchable",
        ),
        (
            SearchQuery {
                q: "a".into(),
                cursor: Some("1~nope~x".into()),
                ..Default::default()
            },
            "cursor",
            "invalid_cursor",
        ),
    ] {
        let Err(Error::Validation(errors)) = t.search(&query).await else {
            panic!("{query:?} was accepted");
        };
        assert_eq!(
            (errors[0].field.as_str(), errors[0].code),
            (field, code),
            "{query:?}"
        );
    }
    // Query syntax of either backend is only words here.
    for q in [
        "a:* | b",
        "\"ada\"*",
        "NEAR(a b)",
        "a' or '1'='1",
        "x\u{0}y",
    ] {
        t.search(&SearchQuery {
            q: q.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{q:?}: {e}"));
    }
}

crate::on_both_backends!(
    words_are_found_by_prefix_in_every_searchable_kind,
    a_write_is_found_at_once_the_trash_and_the_erased_never,
    each_organization_finds_its_own_records_only,
    pages_run_to_the_last_hit_without_repeats,
    bad_searches_say_why,
);

/// The searchable columns of `kind` as the registry marks them.
fn registry_columns(kind: EntityKind) -> BTreeSet<String> {
    kind.columns()
        .iter()
        .filter(|c| c.searchable)
        .map(|c| c.name.to_owned())
        .collect()
}

fn searchable_kinds() -> impl Iterator<Item = EntityKind> {
    EntityKind::ALL.iter().copied().filter(|k| k.searchable())
}

/// On SQLite, each searchable kind's FTS5 table has exactly the registry's searchable columns,
/// and an erased person's words are gone from the index itself (`secure-delete`), not only
/// from the results.
#[tokio::test]
async fn sqlite_index_matches_the_registry() {
    let path = std::env::temp_dir().join(format!("crm-search-{}.db", Uuid::now_v7().simple()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let crm = Crm::connect(&url).await.expect("SQLite file");
    let org = Org::new(&crm, "Index").await;
    let t = org.admin(&crm);
    let c: crm_core::Record<Contact> = t
        .create_json(json!({"first_name": "Zelda", "last_name": "Quixotic"}))
        .await
        .unwrap();
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for kind in searchable_kinds() {
        let sql = format!(
            "select name from pragma_table_info('{}_search')",
            kind.table()
        );
        let columns: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let columns: BTreeSet<String> = columns.into_iter().map(|c| c.0).collect();
        assert_eq!(columns, registry_columns(kind), "{kind:?}");
    }
    sqlx::query("create virtual table temp.words using fts5vocab(main, 'contacts_search', 'row')")
        .execute(&mut conn)
        .await
        .unwrap();
    let count = "select count(*) from temp.words where term in ('zelda', 'quixotic')";
    let (before,): (i64,) = sqlx::query_as(count).fetch_one(&mut conn).await.unwrap();
    assert_eq!(before, 2);
    t.contacts().erase(c.id).await.unwrap();
    let (after,): (i64,) = sqlx::query_as(count).fetch_one(&mut conn).await.unwrap();
    assert_eq!(
        after, 0,
        "the erased person's words are gone from the index"
    );
    conn.close().await.ok();
    crm.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// On PostgreSQL, each searchable kind's `crm_search_<table>` function reads exactly the
/// registry's searchable columns.
#[tokio::test]
async fn postgres_index_matches_the_registry() {
    let Some((_crm, url)) = harness::postgres_with_url().await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    for kind in searchable_kinds() {
        let (body,): (String,) = sqlx::query_as(
            "select pg_get_functiondef(p.oid) from pg_proc p \
             where p.proname = 'crm_search_' || $1 and p.pronamespace = current_schema()::regnamespace",
        )
        .bind(kind.table())
        .fetch_one(&mut conn)
        .await
        .unwrap();
        // The columns of the row `r`, which PostgreSQL prints as `(r).<name>`.
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let read: BTreeSet<String> = body
            .match_indices("(r).")
            .map(|(i, _)| body[i + 4..].chars().take_while(|c| word(*c)).collect())
            .collect();
        assert_eq!(read, registry_columns(kind), "{kind:?}: {body}");
    }
    conn.close().await.ok();
    // That a search reads the index (no sequential scan) is in index_proof.rs.
}
