//! Filters and sorts across links: a field of a linked record (`account.employee_count`, two
//! links at most), records that link here (`exists` / `not exists` with a condition), sorting
//! by a linked record's field with keyset pages; trashed links count as none, and nothing
//! reaches another organization.

use std::collections::BTreeSet;

use crm_core::{
    AccountId, Condition, Contact, Crm, Direction, Entity, Error, ListQuery, Op, Record, Sort,
    Tenant,
};
use serde_json::json;
use uuid::Uuid;

use crate::harness::{Fixtures as _, Org};

/// The ids `q` lists (every page of 100), in order.
async fn listed<E: Entity>(t: &Tenant, q: ListQuery) -> Vec<Uuid> {
    let page = t.records::<E>().list(&q.limit(100)).await.unwrap();
    assert!(page.next_cursor.is_none());
    page.data.iter().map(|r| r.id.uuid()).collect()
}

fn set(ids: &[Uuid]) -> BTreeSet<Uuid> {
    ids.iter().copied().collect()
}

/// The error fields and codes of a refused list.
async fn refused<E: Entity>(t: &Tenant, q: ListQuery) -> Vec<(String, &'static str)> {
    match t.records::<E>().list(&q).await {
        Err(Error::Validation(errors)) => errors.into_iter().map(|e| (e.field, e.code)).collect(),
        other => panic!("not refused: {other:?}"),
    }
}

/// An organization with two accounts (Big: 1000 people, Small: 10) and a trashed one (Gone:
/// 5000), contacts at each and one at none, and opportunities of Big's and Small's contacts.
struct World {
    t: Tenant,
    big: AccountId,
    small: AccountId,
    at_big: Uuid,
    at_small: Uuid,
    at_gone: Uuid,
    nowhere: Uuid,
}

async fn world(crm: &Crm, name: &str) -> World {
    let org = Org::new(crm, name).await;
    let t = org.admin(crm);
    let account = |name: &'static str, people: i64| {
        let t = &t;
        async move {
            let a: Record<crm_core::Account> = t
                .create_json(json!({ "name": name, "employee_count": people }))
                .await
                .unwrap();
            a.id
        }
    };
    let (big, small, gone) = (
        account("Big", 1000).await,
        account("Small", 10).await,
        account("Gone", 5000).await,
    );
    let contact = |email: &'static str, account: Option<AccountId>| {
        let t = &t;
        async move {
            let c: Record<Contact> = t
                .create_json(json!({ "email": email, "account_id": account }))
                .await
                .unwrap();
            c.id.uuid()
        }
    };
    let at_big = contact("ada@big.example", Some(big)).await;
    let at_small = contact("bob@small.example", Some(small)).await;
    let at_gone = contact("cy@gone.example", Some(gone)).await;
    let nowhere = contact("dee@nowhere.example", None).await;
    t.accounts().delete(gone).await.unwrap();
    for (name, contact, account, status) in [
        ("Big renewal", at_big, big, "open"),
        ("Small deal", at_small, small, "won"),
    ] {
        let o: Record<crm_core::Opportunity> = t
            .create_json(
                json!({ "name": name, "primary_contact_id": contact, "account_id": account }),
            )
            .await
            .unwrap();
        if status == "won" {
            t.opportunities().close_won(o.id).await.unwrap();
        }
    }
    World {
        t,
        big,
        small,
        at_big,
        at_small,
        at_gone,
        nowhere,
    }
}

async fn filters_read_fields_of_linked_records(crm: Crm) {
    let w = world(&crm, "Links").await;
    let t = &w.t;
    let large = || ListQuery::default().filter("account.employee_count", Op::Gt, 500);
    // The trashed account's contact has no account to read.
    assert_eq!(listed::<Contact>(t, large()).await, [w.at_big]);
    let not_large =
        ListQuery::default().condition(!Condition::filter("account.employee_count", Op::Gt, 500));
    assert_eq!(
        set(&listed::<Contact>(t, not_large).await),
        set(&[w.at_small, w.at_gone, w.nowhere])
    );
    let no_account = ListQuery::default().filter("account.id", Op::IsNull, true);
    assert_eq!(
        set(&listed::<Contact>(t, no_account).await),
        set(&[]),
        "is_null of a linked field holds for no row: without a linked record nothing is read"
    );
    // Opportunities whose primary contact's email is at a domain; two links away.
    let by_domain =
        ListQuery::default().filter("primary_contact.email", Op::Contains, "@small.example");
    let small_deals = listed::<crm_core::Opportunity>(t, by_domain).await;
    assert_eq!(small_deals.len(), 1);
    let two_hops = ListQuery::default().filter("primary_contact.account.name", Op::Eq, "Small");
    assert_eq!(
        listed::<crm_core::Opportunity>(t, two_hops).await,
        small_deals
    );
    // In a condition tree, with `between` and `in`.
    let tree = ListQuery::default().condition(Condition::or(vec![
        Condition::filter("account.employee_count", Op::Between, json!([5, 20])),
        Condition::filter("account.name", Op::In, json!(["Big"])),
    ]));
    assert_eq!(
        set(&listed::<Contact>(t, tree).await),
        set(&[w.at_big, w.at_small])
    );

    for (field, code) in [
        ("employer.name", "unknown_field"),
        ("account.nope", "unknown_field"),
        ("account.custom_fields.tier", "unknown_field"),
        // Users are no kind of record to follow.
        ("account.owner.name", "unknown_field"),
        (
            "converted_opportunity.primary_contact.account.name",
            "too_deep",
        ),
    ] {
        let q = ListQuery::default().filter(field, Op::Eq, "x");
        let errors = match field.starts_with("converted") {
            true => refused::<crm_core::Lead>(t, q).await,
            false => refused::<Contact>(t, q).await,
        };
        assert_eq!(errors, [("filters[0].field".to_owned(), code)], "{field}");
    }
}

async fn exists_asks_for_records_that_link_here(crm: Crm) {
    let w = world(&crm, "Exists").await;
    let t = &w.t;
    let open = Condition::filter("status", Op::Eq, "open");
    let with_open =
        ListQuery::default().condition(Condition::exists("opportunities", Some(open.clone())));
    let accounts = |q| listed::<crm_core::Account>(t, q);
    assert_eq!(accounts(with_open).await, [w.big.uuid()]);
    let with_any = ListQuery::default().condition(Condition::exists("opportunities", None));
    assert_eq!(
        set(&accounts(with_any).await),
        set(&[w.big.uuid(), w.small.uuid()])
    );
    let without =
        ListQuery::default().condition(!Condition::exists("opportunities.account_id", Some(open)));
    assert_eq!(accounts(without).await, [w.small.uuid()]);
    // Nested: accounts with a contact that is some opportunity's primary contact.
    let nested = ListQuery::default().condition(Condition::exists(
        "contacts",
        Some(Condition::exists("opportunities.primary_contact_id", None)),
    ));
    assert_eq!(
        set(&accounts(nested).await),
        set(&[w.big.uuid(), w.small.uuid()])
    );

    for (relation, code) in [
        ("widgets", "unknown_relation"),
        ("opportunities.primary_contact_id", "unknown_relation"),
    ] {
        let q = ListQuery::default().condition(Condition::exists(relation, None));
        let errors = refused::<crm_core::Account>(t, q).await;
        assert_eq!(
            errors,
            [("condition.exists.relation".to_owned(), code)],
            "{relation}"
        );
    }
    let too_deep = Condition::exists(
        "contacts",
        Some(Condition::exists(
            "opportunities.primary_contact_id",
            Some(Condition::exists("invoices", None)),
        )),
    );
    let errors = refused::<crm_core::Account>(t, ListQuery::default().condition(too_deep)).await;
    assert_eq!(errors[0].1, "too_deep", "{errors:?}");
}

async fn lists_sort_by_a_linked_field_page_by_page(crm: Crm) {
    let w = world(&crm, "Sorted").await;
    let t = &w.t;
    for _ in 0..2 {
        t.create_json::<Contact>(json!({ "email": "eve@big.example", "account_id": w.big }))
            .await
            .unwrap();
    }
    for (direction, expected_first) in [(Direction::Asc, "Big"), (Direction::Desc, "")] {
        let sort = Sort {
            field: "account.name".into(),
            direction,
        };
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let mut q = ListQuery::default().limit(2);
            q.sort = Some(sort.clone());
            q.cursor = cursor;
            let page = t.contacts().list(&q).await.unwrap();
            seen.extend(page.data);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let ids: BTreeSet<Uuid> = seen.iter().map(|c| c.id.uuid()).collect();
        assert_eq!((seen.len(), ids.len()), (6, 6), "every contact once");
        // The names as sorted: Big ×3, Small, then the two without a (live) account; the
        // other way round descending.
        let names = |c: &Record<Contact>| match c.account_id {
            Some(a) if a == w.big => "Big",
            Some(a) if a == w.small => "Small",
            _ => "",
        };
        let got: Vec<&str> = seen.iter().map(names).collect();
        let mut want = vec!["Big", "Big", "Big", "Small", "", ""];
        if direction == Direction::Desc {
            want.reverse();
        }
        assert_eq!(got, want);
        assert_eq!(got[0], expected_first);
        assert!(seen.iter().any(|c| c.id.uuid() == w.at_gone));
    }
    let q = ListQuery::default().sort("account.website", Direction::Asc);
    assert_eq!(refused::<Contact>(t, q).await[0].1, "not_sortable");
}

async fn links_never_reach_another_organization(crm: Crm) {
    let (a, b) = (world(&crm, "A").await, world(&crm, "B").await);
    let large = ListQuery::default().filter("account.employee_count", Op::Gt, 500);
    assert_eq!(listed::<Contact>(&a.t, large.clone()).await, [a.at_big]);
    assert_eq!(listed::<Contact>(&b.t, large).await, [b.at_big]);
    let with_any = ListQuery::default().condition(Condition::exists("opportunities", None));
    let listed_a = listed::<crm_core::Account>(&a.t, with_any).await;
    assert_eq!(set(&listed_a), set(&[a.big.uuid(), a.small.uuid()]));
    let by_name = ListQuery::default().sort("account.name", Direction::Asc);
    let sorted = listed::<Contact>(&b.t, by_name).await;
    assert_eq!(set(&sorted).len(), 4);
    assert!(!sorted.contains(&a.at_big) && !sorted.contains(&a.nowhere));
}

crate::on_both_backends!(
    filters_read_fields_of_linked_records,
    exists_asks_for_records_that_link_here,
    lists_sort_by_a_linked_field_page_by_page,
    links_never_reach_another_organization,
);
