//! The access model through crm-core: permission sets narrow what users and API keys reach
//! (own records, field rules, scopes), in the one read path and the one write path, while
//! callers without a set keep what they had.

use std::collections::BTreeMap;

use crm_core::access::{EntityAccess, FieldRule, NewPermissionSet, Reach};
use crm_core::auth::{ApiKeyScope, NewApiKey};
use crm_core::{
    Account, AccountPatch, Action, Crm, EntityKind, Error, ListQuery, NewAccount, NewContact,
    NewOpportunity, NewUser, Op, Role, SearchQuery, TenantContext, TimelineItem, UserId,
};

use crate::harness::{Org, assert_not_found};

/// A set for sales reps: their own accounts (read and write, no delete), every opportunity,
/// no contacts; accounts' revenue hidden and industry read-only.
fn rep_set() -> NewPermissionSet {
    let own = EntityAccess {
        read: Reach::Own,
        write: Reach::Own,
        delete: Reach::None,
    };
    let fields = BTreeMap::from([(
        "accounts".to_owned(),
        BTreeMap::from([
            ("annual_revenue_minor".to_owned(), FieldRule::Hidden),
            ("industry".to_owned(), FieldRule::ReadOnly),
        ]),
    )]);
    NewPermissionSet {
        name: "Sales rep".into(),
        description: "own accounts, all deals".into(),
        entities: BTreeMap::from([
            ("accounts".to_owned(), own),
            ("opportunities".to_owned(), EntityAccess::ALL),
        ]),
        fields,
    }
}

/// Creates the sales-rep set and gives it to `users`.
async fn give_rep_set(admin: &crm_core::Tenant, users: &[UserId]) {
    let set = admin.permission_sets().create(rep_set()).await.unwrap();
    for u in users {
        admin
            .permission_sets()
            .assign_to_user(*u, Some(set.id))
            .await
            .unwrap();
    }
}

async fn user(crm: &Crm, org: &Org, email: &str) -> UserId {
    crm.tenant(&TenantContext::system(org.id))
        .users()
        .create(NewUser {
            email: email.into(),
            name: email.into(),
            password: None,
            role: Role::User,
        })
        .await
        .unwrap()
        .id
}

fn account(name: &str, owner: Option<UserId>, revenue: i64) -> NewAccount {
    NewAccount {
        name: name.into(),
        owner_id: owner,
        industry: Some("Energy".into()),
        annual_revenue_minor: Some(revenue),
        annual_revenue_currency: Some("EUR".into()),
        ..Default::default()
    }
}

fn names(page: &[crm_core::Record<Account>]) -> Vec<String> {
    let mut n: Vec<String> = page.iter().map(|a| a.name.clone()).collect();
    n.sort();
    n
}

async fn a_permission_set_narrows_records_and_fields(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let (ada, bob) = (
        user(&crm, &org, "ada@example.com").await,
        user(&crm, &org, "bob@example.com").await,
    );
    give_rep_set(&admin, &[ada, bob]).await;
    let mine = admin
        .accounts()
        .create(account("Ada's", Some(ada), 100))
        .await
        .unwrap();
    let bobs = admin
        .accounts()
        .create(account("Bob's", Some(bob), 200))
        .await
        .unwrap();
    admin
        .accounts()
        .create(account("Nobody's", None, 300))
        .await
        .unwrap();
    let deal = |account_id| NewOpportunity {
        name: "Deal".into(),
        account_id: Some(account_id),
        ..Default::default()
    };
    admin.opportunities().create(deal(mine.id)).await.unwrap();
    admin.opportunities().create(deal(bobs.id)).await.unwrap();

    let t = crm.tenant(&TenantContext::user(org.id, ada, Role::User));
    // Lists and gets: only her own account, without its revenue.
    let page = t.accounts().list(&ListQuery::default()).await.unwrap();
    assert_eq!(names(&page.data), ["Ada's"]);
    assert_eq!(page.data[0].annual_revenue_minor, None, "hidden");
    assert_eq!(
        page.data[0].industry.as_deref(),
        Some("Energy"),
        "read-only is shown"
    );
    assert_not_found(&t.accounts().get(bobs.id).await.unwrap_err(), "account");
    assert_eq!(
        t.accounts()
            .get(mine.id)
            .await
            .unwrap()
            .annual_revenue_minor,
        None
    );
    // A hidden field is no oracle: filtering or sorting on it is refused.
    let by_revenue = ListQuery::default().filter("annual_revenue_minor", Op::Gte, 150);
    assert!(matches!(
        t.accounts().list(&by_revenue).await,
        Err(Error::Validation(e)) if e[0].code == "hidden_field"
    ));
    // Through a link: opportunities are all hers to read, but a filter on their account sees
    // only the accounts she reaches.
    let via = ListQuery::default().filter("account.name", Op::Eq, "Bob's");
    assert!(t.opportunities().list(&via).await.unwrap().data.is_empty());
    assert_eq!(
        t.opportunities()
            .list(&ListQuery::default())
            .await
            .unwrap()
            .data
            .len(),
        2
    );
    // Contacts are not in her set at all: she sees none (only shares could give her some)
    // and may not create one.
    assert!(
        t.contacts()
            .list(&ListQuery::default())
            .await
            .unwrap()
            .data
            .is_empty()
    );
    assert!(matches!(
        t.contacts().create(NewContact { last_name: Some("X".into()), ..Default::default() }).await,
        Err(Error::Forbidden(r)) if r.code == "no_access"
    ));

    // Writes: her own account, not its read-only or hidden fields; nobody else's.
    let renamed = AccountPatch {
        name: Some("Ada's own".into()),
        ..Default::default()
    };
    t.accounts().update(mine.id, renamed.clone()).await.unwrap();
    let industry = AccountPatch {
        industry: Some(Some("Retail".into())),
        ..Default::default()
    };
    assert!(matches!(
        t.accounts().update(mine.id, industry).await,
        Err(Error::Validation(e)) if e[0].code == "read_only" && e[0].field == "industry"
    ));
    assert_not_found(
        &t.accounts().update(bobs.id, renamed).await.unwrap_err(),
        "account",
    );
    // She reads her account but may not trash it: refused, not hidden.
    assert!(matches!(
        t.accounts().delete(mine.id).await,
        Err(Error::Forbidden(r)) if r.code == "not_permitted"
    ));
    // Her create is hers, and may not set a read-only field.
    assert!(matches!(
        t.accounts().create(account("New", Some(ada), 1)).await,
        Err(Error::Validation(_))
    ));
    let new = t
        .accounts()
        .create(NewAccount {
            name: "New".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(t.accounts().get(new.id).await.is_ok());
    // Nothing was changed behind the rules: the admin sees the revenue and the industry.
    let seen = admin.accounts().get(mine.id).await.unwrap();
    assert_eq!(
        (
            seen.annual_revenue_minor,
            seen.industry.as_deref(),
            seen.name.as_str()
        ),
        (Some(100), Some("Energy"), "Ada's own")
    );

    // Back to the built-in access: everything again, at once.
    admin
        .permission_sets()
        .assign_to_user(ada, None)
        .await
        .unwrap();
    let page = t.accounts().list(&ListQuery::default()).await.unwrap();
    assert_eq!(page.data.len(), 4);
}

async fn callers_without_a_set_keep_their_access(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    admin.permission_sets().create(rep_set()).await.unwrap();
    let theirs = admin
        .accounts()
        .create(account("Theirs", None, 5))
        .await
        .unwrap();
    let u = org.user(&crm);
    let got = u.accounts().get(theirs.id).await.unwrap();
    assert_eq!(got.annual_revenue_minor, Some(5));
    u.accounts()
        .update(
            theirs.id,
            AccountPatch {
                industry: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Trash: what one created or owns, as before.
    let own = u.accounts().create(account("Own", None, 1)).await.unwrap();
    u.accounts().delete(own.id).await.unwrap();
    assert!(matches!(
        u.accounts().delete(theirs.id).await,
        Err(Error::Forbidden(_))
    ));
    // Only admins manage permission sets.
    assert!(matches!(
        u.permission_sets().list().await,
        Err(Error::Forbidden(r)) if r.code == "admin_only"
    ));
}

async fn api_key_scopes_are_enforced_by_the_library(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let (key, _) = admin
        .api_keys()
        .create(NewApiKey {
            name: "reader".into(),
            scopes: vec![ApiKeyScope::Read(EntityKind::Account)],
        })
        .await
        .unwrap();
    let a = admin
        .accounts()
        .create(account("A", None, 1))
        .await
        .unwrap();
    let k = crm.tenant(&TenantContext::api_key(org.id, key.id.uuid()));
    assert_eq!(k.accounts().get(a.id).await.unwrap().name, "A");
    assert!(matches!(
        k.accounts()
            .update(
                a.id,
                AccountPatch {
                    name: Some("B".into()),
                    ..Default::default()
                }
            )
            .await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        k.contacts().list(&ListQuery::default()).await,
        Err(Error::Forbidden(r)) if r.code == "out_of_scope"
    ));
    assert!(matches!(
        k.permission_sets().list().await,
        Err(Error::Forbidden(_))
    ));
}

async fn permission_sets_are_checked_against_the_registry(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let bad = NewPermissionSet {
        name: "Bad".into(),
        entities: BTreeMap::from([("widgets".to_owned(), EntityAccess::ALL)]),
        fields: BTreeMap::from([(
            "accounts".to_owned(),
            BTreeMap::from([
                ("name".to_owned(), FieldRule::Hidden),
                ("id".to_owned(), FieldRule::ReadOnly),
                ("no such field!".to_owned(), FieldRule::ReadOnly),
            ]),
        )]),
        ..Default::default()
    };
    let Err(Error::Validation(errors)) = admin.permission_sets().create(bad).await else {
        panic!("refused");
    };
    let codes: Vec<&str> = errors.iter().map(|e| e.code).collect();
    for code in [
        "unknown_entity",
        "not_hideable",
        "not_ruled",
        "unknown_field",
    ] {
        assert!(codes.contains(&code), "{codes:?}");
    }
    let set = admin.permission_sets().create(rep_set()).await.unwrap();
    assert!(matches!(
        admin.permission_sets().create(rep_set()).await,
        Err(Error::Conflict(r)) if r.code == "duplicate"
    ));
    let ada = user(&crm, &org, "ada@example.com").await;
    admin
        .permission_sets()
        .assign_to_user(ada, Some(set.id))
        .await
        .unwrap();
    assert!(matches!(
        admin.permission_sets().delete(set.id).await,
        Err(Error::Conflict(r)) if r.code == "in_use"
    ));
    admin
        .permission_sets()
        .assign_to_user(ada, None)
        .await
        .unwrap();
    admin.permission_sets().delete(set.id).await.unwrap();
}

/// Every exit that is not a list or a get honours the set too: timelines, history and `as_of`,
/// search hits, and the change feed read by an API key that carries the set.
async fn every_exit_honours_the_set(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let (ada, bob) = (
        user(&crm, &org, "ada@example.com").await,
        user(&crm, &org, "bob@example.com").await,
    );
    give_rep_set(&admin, &[ada]).await;
    let start = admin.changes().head().await.unwrap();
    let mine = admin
        .accounts()
        .create(account("Zephyr Ada", Some(ada), 100))
        .await
        .unwrap();
    let then = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    admin
        .accounts()
        .update(
            mine.id,
            AccountPatch {
                annual_revenue_minor: Some(Some(900)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let bobs = admin
        .accounts()
        .create(account("Zephyr Bob", Some(bob), 200))
        .await
        .unwrap();
    let t = crm.tenant(&TenantContext::user(org.id, ada, Role::User));

    // Timelines: of her account without the hidden field, of Bob's not at all.
    let timeline = t
        .timeline(EntityKind::Account, mine.id, 100, None)
        .await
        .unwrap();
    assert_eq!(timeline.data.len(), 2, "created and updated");
    for item in &timeline.data {
        let TimelineItem::Event(e) = item else {
            panic!("no activities here")
        };
        assert!(!e.changes.contains_key("annual_revenue_minor"), "{e:?}");
    }
    assert_not_found(
        &t.timeline(EntityKind::Account, bobs.id, 100, None)
            .await
            .unwrap_err(),
        "account",
    );
    // History: no change of the hidden field, and asking for it is refused; as_of does not
    // bring it back.
    let history = t
        .accounts()
        .history(mine.id, None, 100, None)
        .await
        .unwrap();
    assert!(!history.data.is_empty());
    assert!(
        history
            .data
            .iter()
            .all(|c| c.field != "annual_revenue_minor")
    );
    assert!(matches!(
        t.accounts().history(mine.id, Some("annual_revenue_minor"), 10, None).await,
        Err(Error::Validation(e)) if e[0].code == "hidden_field"
    ));
    assert_not_found(
        &t.accounts()
            .history(bobs.id, None, 10, None)
            .await
            .unwrap_err(),
        "account",
    );
    let past = t.accounts().as_of(mine.id, then).await.unwrap();
    assert_eq!(past.annual_revenue_minor, None, "hidden in the past too");
    assert_eq!(
        admin
            .accounts()
            .as_of(mine.id, then)
            .await
            .unwrap()
            .annual_revenue_minor,
        Some(100)
    );
    // Search: her account is a hit, Bob's is not.
    let hits = t
        .search(&SearchQuery {
            q: "zephyr".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = hits.data.iter().map(|h| h.id).collect();
    assert_eq!(ids, [mine.id.uuid()]);
    assert_eq!(
        admin
            .search(&SearchQuery {
                q: "zephyr".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .data
            .len(),
        2
    );

    // The change feed, read by a key with a set of its own (all accounts, their revenue
    // hidden; no contacts): a contact is a tombstone, accounts come without the hidden field.
    let contact = admin
        .contacts()
        .create(NewContact {
            last_name: Some("Hidden".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut feed_set = rep_set();
    feed_set.name = "Feed".into();
    feed_set.entities = BTreeMap::from([("accounts".to_owned(), EntityAccess::ALL)]);
    let feed_set = admin.permission_sets().create(feed_set).await.unwrap();
    let (key, _) = admin
        .api_keys()
        .create(NewApiKey {
            name: "feed".into(),
            scopes: vec![ApiKeyScope::All],
        })
        .await
        .unwrap();
    admin
        .permission_sets()
        .assign_to_api_key(key.id.uuid(), Some(feed_set.id))
        .await
        .unwrap();
    let k = crm.tenant(&TenantContext::api_key(org.id, key.id.uuid()));
    let feed = k.changes().after(Some(&start), 100).await.unwrap();
    let of = |id: uuid::Uuid| {
        feed.data
            .iter()
            .filter(move |c| c.event.record_id == id)
            .map(|c| &c.event)
    };
    assert_eq!(of(mine.id.uuid()).count(), 2);
    assert_eq!(of(bobs.id.uuid()).count(), 1);
    for e in of(mine.id.uuid()).chain(of(bobs.id.uuid())) {
        assert!(!e.changes.contains_key("annual_revenue_minor"), "{e:?}");
        if e.action == Action::Created {
            assert!(e.changes.contains_key("name"), "{e:?}");
        }
    }
    let tombstones: Vec<_> = of(contact.id.uuid()).collect();
    assert_eq!(tombstones.len(), 1);
    assert!(tombstones[0].changes.is_empty() && tombstones[0].actor_id.is_none());
    // Plain users still may not read the feed.
    assert!(matches!(
        t.changes().after(None, 10).await,
        Err(Error::Forbidden(r)) if r.code == "admin_only"
    ));
}

/// A formula over a hidden field is hidden too: its value would show what the rule hides. One
/// that reads only visible fields stays.
async fn formulas_over_a_hidden_field_are_hidden(crm: Crm) {
    use crm_core::{Computed, CustomFieldType, FormulaSpec, NewCustomField};
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let formula = |key: &str, expression: &str| {
        let mut f = NewCustomField::new(key, key, CustomFieldType::Number);
        f.computed = Some(Computed::Formula(FormulaSpec {
            expression: expression.into(),
        }));
        f
    };
    for f in [
        formula("revenue_k", "annual_revenue_minor / 100000"),
        formula("staff", "employee_count * 1"),
    ] {
        admin
            .custom_fields()
            .define(EntityKind::Account, f)
            .await
            .unwrap();
    }
    let ada = user(&crm, &org, "ada@example.com").await;
    give_rep_set(&admin, &[ada]).await;
    let mut new = account("Ada's", Some(ada), 250_000_000);
    new.employee_count = Some(40);
    let mine = admin.accounts().create(new).await.unwrap();
    assert_eq!(mine.custom_fields["revenue_k"], 2500);

    let t = crm.tenant(&TenantContext::user(org.id, ada, Role::User));
    let got = t.accounts().get(mine.id).await.unwrap();
    assert!(
        got.custom_fields.get("revenue_k").is_none(),
        "{:?}",
        got.custom_fields
    );
    assert_eq!(got.custom_fields["staff"], 40);
    // Nor is it an oracle.
    let by = ListQuery::default().filter("custom_fields.revenue_k", Op::Gt, 1);
    assert!(matches!(
        t.accounts().list(&by).await,
        Err(Error::Validation(e)) if e[0].code == "hidden_field"
    ));
    // A formula defined after the set was assigned is hidden at once.
    admin
        .custom_fields()
        .define(
            EntityKind::Account,
            formula("revenue_x", "annual_revenue_minor * 2"),
        )
        .await
        .unwrap();
    admin
        .accounts()
        .update(mine.id, AccountPatch::default())
        .await
        .unwrap();
    let listed = t.accounts().list(&ListQuery::default()).await.unwrap();
    assert!(listed.data[0].custom_fields.get("revenue_x").is_none());
}

/// Duplicate checks are no oracle: a restricted caller hears of a match only on a record they
/// read.
async fn duplicates_are_told_only_of_what_the_caller_sees(crm: Crm) {
    use crm_core::DuplicatePolicy::Warn;
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let (ada, bob) = (
        user(&crm, &org, "ada@example.com").await,
        user(&crm, &org, "bob@example.com").await,
    );
    let own = EntityAccess {
        read: Reach::Own,
        write: Reach::Own,
        delete: Reach::None,
    };
    let set = NewPermissionSet {
        name: "Own contacts".into(),
        description: String::new(),
        entities: BTreeMap::from([("contacts".to_owned(), own)]),
        fields: BTreeMap::new(),
    };
    let set = admin.permission_sets().create(set).await.unwrap();
    admin
        .permission_sets()
        .assign_to_user(ada, Some(set.id))
        .await
        .unwrap();
    let person = |owner| NewContact {
        email: Some("lin@example.com".into()),
        owner_id: Some(owner),
        ..Default::default()
    };
    let bobs = admin.contacts().create(person(bob)).await.unwrap();
    // Ada does not read Bob's contact: she is not told it exists.
    let t = crm.tenant(&TenantContext::user(org.id, ada, Role::User));
    let first = t.contacts().create_with(person(ada), Warn).await.unwrap();
    assert!(first.duplicates.is_empty(), "{:?}", first.duplicates);
    // Her own is a match she may hear of.
    let second = t.contacts().create_with(person(ada), Warn).await.unwrap();
    assert_eq!(second.duplicates.len(), 1);
    assert_eq!(second.duplicates[0].id, first.record.id.uuid());
    // Company admins hear of every one.
    let admin_sees = admin
        .contacts()
        .create_with(person(bob), Warn)
        .await
        .unwrap();
    assert_eq!(admin_sees.duplicates.len(), 3);
    assert!(admin_sees.duplicates.iter().any(|d| d.id == bobs.id.uuid()));
}

crate::on_both_backends!(
    duplicates_are_told_only_of_what_the_caller_sees,
    formulas_over_a_hidden_field_are_hidden,
    a_permission_set_narrows_records_and_fields,
    callers_without_a_set_keep_their_access,
    api_key_scopes_are_enforced_by_the_library,
    permission_sets_are_checked_against_the_registry,
    every_exit_honours_the_set
);
