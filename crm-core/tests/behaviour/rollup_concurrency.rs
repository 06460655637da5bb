//! Roll-ups under concurrent writes of one parent's children: every write succeeds (no
//! deadlock, no storage error) and the roll-ups equal the live aggregate afterwards.
//!
//! The children's foreign-key checks hold `for key share` locks on the parent; a refresh that
//! locked the parent `for update` waited on every other writer's share lock while they waited on
//! its, and PostgreSQL broke the cycle by failing all but one (39 of 40 creates answered 500).

use std::sync::Arc;

use crm_core::{
    CustomFieldType as T, EntityKind, ListQuery, Merge, NewOpportunity, Opportunity, Record,
    RollupFunction, Tenant,
};
use serde_json::{Value, json};

use crate::computed_fields::rollup;
use crate::harness::{Fixtures as _, Org};

/// Concurrent writers: at least eight, as the project's rule for anything that writes.
const WRITERS: usize = 8;

async fn deal(
    t: &Tenant,
    account: crm_core::Id<crm_core::Account>,
    amount: i64,
) -> Record<Opportunity> {
    t.opportunities()
        .create(NewOpportunity {
            name: format!("Deal {amount}"),
            account_id: Some(account),
            amount_minor: Some(amount),
            currency: Some("EUR".into()),
            ..Default::default()
        })
        .await
        .expect("a concurrent create succeeds")
}

/// The roll-ups of `account` and the aggregates of its live opportunities, recomputed here.
async fn rollups_and_truth(t: &Tenant, account: crm_core::Id<crm_core::Account>) -> (Value, Value) {
    let acc = t.accounts().get(account).await.unwrap();
    let got = json!({
        "n": acc.custom_fields.get("n"),
        "total": acc.custom_fields.get("total"),
        "biggest": acc.custom_fields.get("biggest"),
    });
    let mut amounts = Vec::new();
    let mut q = ListQuery::default()
        .filter("account_id", crm_core::Op::Eq, account.uuid().to_string())
        .limit(100);
    loop {
        let page = t.opportunities().list(&q).await.unwrap();
        amounts.extend(page.data.iter().map(|o| o.amount_minor.unwrap_or(0)));
        if page.next_cursor.is_none() {
            break;
        }
        q = q.cursor(page.next_cursor);
    }
    let want = json!({
        "n": amounts.len(),
        "total": amounts.iter().sum::<i64>(),
        "biggest": amounts.iter().max(),
    });
    (got, want)
}

/// The reproduction: 40 creates of children of one parent from eight writers.
async fn concurrent_creates_under_one_parent(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    admin
        .custom_fields()
        .define(
            EntityKind::Account,
            rollup("n", T::Number, RollupFunction::Count, None, None),
        )
        .await
        .unwrap();
    let account = admin.account("Globex").await.id;
    let t = Arc::new(org.user(&crm));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let t = t.clone();
            tokio::spawn(async move {
                for i in 0..5 {
                    deal(&t, account, (w * 10 + i) as i64).await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("no writer failed");
    }
    let acc = t.accounts().get(account).await.unwrap();
    assert_eq!(acc.custom_fields.get("n"), Some(&json!(WRITERS * 5)));
}

/// Mixed verbs from eight writers on the children of one parent with three roll-ups: create,
/// patch of the amount, trash, restore, a move to a second parent, and merges of duplicates of
/// the parent (whose children are re-pointed to it).
async fn mixed_writes_under_one_parent(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    for f in [
        rollup("n", T::Number, RollupFunction::Count, None, None),
        rollup(
            "total",
            T::Number,
            RollupFunction::Sum,
            Some("amount_minor"),
            None,
        ),
        rollup(
            "biggest",
            T::Number,
            RollupFunction::Max,
            Some("amount_minor"),
            None,
        ),
    ] {
        admin
            .custom_fields()
            .define(EntityKind::Account, f)
            .await
            .unwrap();
    }
    let a = admin.account("Globex").await.id;
    let b = admin.account("Initech").await.id;
    let t = Arc::new(admin);
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let t = t.clone();
            tokio::spawn(async move {
                let base = (w as i64 + 1) * 1000;
                for round in 0..3_i64 {
                    let one = deal(&t, a, base + round).await;
                    let two = deal(&t, a, base + 100 + round).await;
                    t.update_json(one.id, json!({ "amount_minor": base + 500 + round }))
                        .await
                        .expect("a concurrent patch succeeds");
                    t.opportunities()
                        .delete(two.id)
                        .await
                        .expect("a concurrent trash succeeds");
                    t.opportunities()
                        .restore(two.id)
                        .await
                        .expect("a concurrent restore succeeds");
                    // A duplicate of the parent, with a child, merged into it: the child is
                    // re-pointed and the parent's roll-ups refreshed, set-based.
                    let dup = t.account(&format!("Globex {w}.{round}")).await.id;
                    deal(&t, dup, base + 200 + round).await;
                    t.accounts()
                        .merge(
                            a,
                            Merge {
                                absorb: vec![dup.uuid()],
                                fields: Default::default(),
                            },
                        )
                        .await
                        .expect("a concurrent merge succeeds");
                    // A move to the other parent: both refresh.
                    t.update_json(two.id, json!({ "account_id": b }))
                        .await
                        .expect("a concurrent re-parenting succeeds");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("no writer failed");
    }
    for account in [a, b] {
        let (got, want) = rollups_and_truth(&t, account).await;
        assert_eq!(got, want, "the roll-ups equal the live aggregate");
    }
    let (got, _) = rollups_and_truth(&t, a).await;
    assert_eq!(
        got["n"],
        json!(WRITERS * 3 * 2),
        "two deals a round stay on a"
    );
}

crate::on_both_backends!(
    concurrent_creates_under_one_parent,
    mixed_writes_under_one_parent
);
