//! The access model through crm-core: permission sets narrow what users and API keys reach
//! (own records, field rules, scopes), in the one read path and the one write path, while
//! callers without a set keep what they had.

use std::collections::BTreeMap;

use crm_core::access::{EntityAccess, FieldRule, NewPermissionSet, Reach};
use crm_core::auth::{ApiKeyScope, NewApiKey};
use crm_core::{
    Account, AccountPatch, Crm, EntityKind, Error, ListQuery, NewAccount, NewContact,
    NewOpportunity, NewUser, Op, Role, TenantContext, UserId,
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
    let set = admin.permission_sets().create(rep_set()).await.unwrap();
    for u in [ada, bob] {
        admin
            .permission_sets()
            .assign_to_user(u, Some(set.id))
            .await
            .unwrap();
    }
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

crate::on_both_backends!(
    a_permission_set_narrows_records_and_fields,
    callers_without_a_set_keep_their_access,
    api_key_scopes_are_enforced_by_the_library,
    permission_sets_are_checked_against_the_registry
);
