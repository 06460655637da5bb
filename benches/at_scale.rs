//! What the CRM's richer reads cost at a million contacts: filters and sorts across links,
//! `exists` conditions, and full-text search, each next to the plain list page they extend.
//!
//! It reads a database that `crm seed` filled (the same data the HTTP load uses): per
//! organization 1,000 accounts, 10,000 contacts linked to them, 500 open opportunities and more,
//! 100 organizations for a million contacts.
//!
//! ```sh
//! createdb -h 127.0.0.1 -U postgres crm_scale
//! crm --database-url postgres://postgres@127.0.0.1:5432/crm_scale seed --orgs 100 --records 10000
//! CRM_SCALE_DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_scale cargo bench --bench at_scale
//! ```
//!
//! Without `CRM_SCALE_DATABASE_URL` it prints how to make one and measures nothing. Every
//! function reads one organization (the first seeded), as its system context, through the
//! library; the figures are in `docs/benchmarks.md`, "At a million contacts".
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use crm_core::{
    Condition, Crm, Direction, EntityKind, ListQuery, Op, SearchQuery, Tenant, TenantContext,
};
use tokio::runtime::Runtime;

/// Rows per page, as the API's default page.
const PAGE: u32 = 50;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The first organization of the database (in a database only `crm seed` filled, its first).
async fn tenant(crm: &Crm) -> Tenant {
    let org = crm.organizations().list(None, 1).await.unwrap().remove(0);
    crm.tenant(&TenantContext::system(org.id))
}

fn at_scale(c: &mut Criterion) {
    let Ok(url) = std::env::var("CRM_SCALE_DATABASE_URL") else {
        eprintln!(
            "at_scale: set CRM_SCALE_DATABASE_URL to a database filled by \
             `crm seed --orgs 100 --records 10000` (see the top of benches/at_scale.rs)"
        );
        return;
    };
    let rt = runtime();
    let crm = rt.block_on(Crm::connect(&url)).unwrap();
    let t = rt.block_on(tenant(&crm));
    let contacts = rt
        .block_on(t.contacts().list(&ListQuery::default().limit(1)))
        .unwrap();
    assert!(
        !contacts.data.is_empty(),
        "the organization has no contacts: seed the database first"
    );
    // A word every organization's contacts have (the seed's names come from short lists), and
    // its first three letters for type-ahead.
    let word = contacts.data[0]
        .last_name
        .clone()
        .expect("seeded contacts have a last name");
    let prefix: String = word.chars().take(3).collect();

    let mut g = c.benchmark_group("at_scale");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30);

    let list = |name: &str, q: ListQuery, g: &mut criterion::BenchmarkGroup<'_, _>| {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let page = t.contacts().list(&q).await.unwrap();
                assert!(
                    !page.data.is_empty(),
                    "{name}: an empty page measures nothing"
                );
            })
        });
    };
    let page = || ListQuery::default().limit(PAGE);
    list("contacts_page", page(), &mut g);
    // About 99 % of the accounts have more than 500 employees, about 2 % more than 49,000.
    list(
        "contacts_where_account_employees_gt_500",
        page().filter("account.employee_count", Op::Gt, 500),
        &mut g,
    );
    list(
        "contacts_where_account_employees_gt_49000",
        page().filter("account.employee_count", Op::Gt, 49_000),
        &mut g,
    );
    list(
        "contacts_sorted_by_account_name",
        page().sort("account.name", Direction::Asc),
        &mut g,
    );

    let accounts = |name: &str, q: ListQuery, g: &mut criterion::BenchmarkGroup<'_, _>| {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let page = t.accounts().list(&q).await.unwrap();
                assert!(
                    !page.data.is_empty(),
                    "{name}: an empty page measures nothing"
                );
            })
        });
    };
    accounts("accounts_page", page(), &mut g);
    accounts(
        "accounts_with_open_opportunity",
        page().condition(Condition::exists(
            "opportunities",
            Some(Condition::filter("status", Op::Eq, "open")),
        )),
        &mut g,
    );
    accounts(
        "accounts_without_opportunity",
        page().condition(!Condition::exists("opportunities", None)),
        &mut g,
    );
    g.bench_function("opportunities_where_account_employees_gt_49000", |b| {
        let q = page().filter("account.employee_count", Op::Gt, 49_000);
        b.to_async(&rt).iter(|| async {
            let page = t.opportunities().list(&q).await.unwrap();
            assert!(!page.data.is_empty());
        })
    });

    let search = |name: &str, q: SearchQuery, g: &mut criterion::BenchmarkGroup<'_, _>| {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let page = t.search(&q).await.unwrap();
                assert!(!page.data.is_empty(), "{name}: no hits measures nothing");
            })
        });
    };
    let q = |q: &str, kinds: Vec<EntityKind>| SearchQuery {
        q: q.into(),
        kinds,
        limit: Some(PAGE),
        cursor: None,
    };
    search("search_word_all_kinds", q(&word, vec![]), &mut g);
    search("search_prefix_all_kinds", q(&prefix, vec![]), &mut g);
    search(
        "search_prefix_contacts",
        q(&prefix, vec![EntityKind::Contact]),
        &mut g,
    );
    // The second page: keyset from the first page's cursor, not an offset.
    let first = rt.block_on(t.search(&q(&prefix, vec![]))).unwrap();
    let mut second = q(&prefix, vec![]);
    second.cursor = first.next_cursor.clone();
    search("search_prefix_second_page", second, &mut g);
    g.finish();
}

criterion_group!(benches, at_scale);
criterion_main!(benches);
