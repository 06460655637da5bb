//! Invoices: totals, gap-free numbering (also under concurrency), the status lifecycle; invoices
//! once sent are financial records (never trashed or purged), and paying or voiding one needs an
//! admin.

use std::collections::BTreeSet;

use crm_core::sqlx::types::Json;
use crm_core::{AccountId, Crm, Error, InvoicePatch, InvoiceStatus, LineItem, NewInvoice};

use serde_json::json;

use crate::harness::{Fixtures as _, Org};

fn invoice(account: AccountId, lines: Vec<LineItem>) -> NewInvoice {
    NewInvoice {
        account_id: Some(account),
        currency: "EUR".into(),
        line_items: Json(lines),
        due_date: Some("2027-02-28".parse().unwrap()),
        issue_date: Some("2027-01-31".parse().unwrap()),
        ..Default::default()
    }
}

async fn totals_numbers_and_lifecycle(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    // Paying and voiding are for company admins (see `pay_and_void_need_an_admin`).
    let t = org.admin(&crm);
    let a = t.account("Billed").await.id;

    let lines = vec![
        LineItem::new("Consulting", 3, 333, 2000),
        LineItem::new("Discount", 1, -100, 2000),
    ];
    let inv = t.invoices().create(invoice(a, lines)).await.unwrap();
    assert_eq!(inv.number, "INV-000001");
    assert_eq!(inv.status, InvoiceStatus::Draft);
    assert_eq!(
        (inv.subtotal_minor, inv.tax_minor, inv.total_minor),
        (899, 180, 1079)
    );
    assert_eq!(inv.line_items.0[0].tax_minor, 200, "199.8 rounds to 200");
    let second = t.invoices().create(invoice(a, vec![])).await.unwrap();
    assert_eq!(second.number, "INV-000002");

    // Drafts are editable and totals follow the lines.
    let patch = InvoicePatch {
        line_items: Some(Json(vec![LineItem::new("Only", 2, 1_000, 0)])),
        ..Default::default()
    };
    let inv = t.invoices().update(inv.id, patch).await.unwrap();
    assert_eq!(
        (inv.subtotal_minor, inv.tax_minor, inv.total_minor),
        (2_000, 0, 2_000)
    );

    // An empty invoice cannot be sent; a sent one is no longer editable.
    assert!(matches!(
        t.invoices().send(second.id).await,
        Err(Error::Validation(_))
    ));
    let sent = t.invoices().send(inv.id).await.unwrap();
    assert_eq!(sent.status, InvoiceStatus::Sent);
    assert!(sent.sent_at.is_some());
    let err = t.update_json(inv.id, json!({ "notes": "late edit" })).await;
    assert!(matches!(err, Err(Error::Conflict(_))), "{err:?}");

    // Overdue, then paid; a paid invoice cannot be voided.
    let marked = t
        .invoices()
        .mark_overdue("2027-03-01".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(marked, 1);
    assert_eq!(
        t.invoices().get(inv.id).await.unwrap().status,
        InvoiceStatus::Overdue
    );
    let paid = t.invoices().mark_paid(inv.id).await.unwrap();
    assert_eq!(paid.status, InvoiceStatus::Paid);
    assert!(matches!(
        t.invoices().void(inv.id).await,
        Err(Error::Conflict(_))
    ));
    assert!(
        matches!(
            t.invoices().mark_paid(second.id).await,
            Err(Error::Conflict(_))
        ),
        "a draft is not paid"
    );
    let void = t.invoices().void(second.id).await.unwrap();
    assert_eq!(void.status, InvoiceStatus::Void);

    // Invalid input: every problem at once.
    let mut bad = invoice(a, vec![LineItem::new("", 0, 1, 20_000)]);
    bad.account_id = None;
    bad.currency = "eur".into();
    bad.due_date = Some("2027-01-01".parse().unwrap());
    let Err(Error::Validation(errors)) = t.invoices().create(bad).await else {
        panic!("expected validation")
    };
    let fields: BTreeSet<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        BTreeSet::from([
            "account_id",
            "currency",
            "due_date",
            "line_items[0].description",
            "line_items[0].quantity",
            "line_items[0].tax_rate_bp"
        ])
    );
}

/// The number of a new empty invoice of `account`.
async fn number(t: &crm_core::Tenant, account: crm_core::AccountId) -> String {
    let created = t.invoices().create(invoice(account, vec![])).await;
    created.expect("create invoice").number.clone()
}

async fn numbering_is_per_organization_and_gap_free(crm: Crm) {
    let (a, b) = (Org::new(&crm, "A").await, Org::new(&crm, "B").await);
    let (ta, tb) = (a.user(&crm), b.user(&crm));
    let (aa, ab) = (ta.account("Billed").await.id, tb.account("Billed").await.id);
    assert_eq!(number(&ta, aa).await, "INV-000001");
    assert_eq!(number(&tb, ab).await, "INV-000001");
    // A failed creation gives its number back: the account is another organization's.
    assert!(matches!(
        ta.invoices().create(invoice(ab, vec![])).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        ta.invoices()
            .create(invoice(aa, vec![]))
            .await
            .unwrap()
            .number,
        "INV-000002"
    );
}

async fn numbering_under_concurrency(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let a = org.user(&crm).account("Billed").await.id;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let t = org.user(&crm);
        tasks.spawn(async move {
            t.invoices()
                .create(invoice(a, vec![]))
                .await
                .map(|i| i.fields.number)
        });
    }
    let mut numbers = Vec::new();
    while let Some(result) = tasks.join_next().await {
        numbers.push(result.unwrap().unwrap());
    }
    numbers.sort();
    let expected: Vec<_> = (1..=40).map(|n| format!("INV-{n:06}")).collect();
    assert_eq!(numbers, expected, "unique and gap-free");
}

fn refused<T: std::fmt::Debug>(out: Result<T, Error>, code: &str) {
    match out {
        Err(Error::Conflict(r) | Error::Forbidden(r)) if r.code == code => {}
        other => panic!("expected {code}, got {other:?}"),
    }
}

async fn sent_invoices_are_voided_never_deleted(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let (admin, user) = (org.admin(&crm), org.user(&crm));
    let a = user.account("Billed").await.id;
    let line = || vec![LineItem::new("Work", 1, 1_000, 0)];

    // Drafts: their creator trashes and restores them, an admin purges them.
    let draft = user.invoices().create(invoice(a, line())).await.unwrap();
    user.invoices().delete(draft.id).await.unwrap();
    user.invoices().restore(draft.id).await.unwrap();
    admin.invoices().purge(draft.id).await.unwrap();

    // Sent, overdue, paid or void: neither the creator nor an admin deletes it.
    let inv = user.invoices().create(invoice(a, line())).await.unwrap();
    user.invoices().send(inv.id).await.unwrap();
    for status in [InvoiceStatus::Sent, InvoiceStatus::Overdue] {
        if status == InvoiceStatus::Overdue {
            let today = "2027-03-01".parse().unwrap();
            assert_eq!(admin.invoices().mark_overdue(today).await.unwrap(), 1);
        }
        assert_eq!(admin.invoices().get(inv.id).await.unwrap().status, status);
        refused(user.invoices().delete(inv.id).await, "not_draft");
        refused(admin.invoices().delete(inv.id).await, "not_draft");
        refused(admin.invoices().purge(inv.id).await, "not_draft");
    }

    // Paying and voiding are for company admins.
    refused(user.invoices().mark_paid(inv.id).await, "admin_only");
    let paid = admin.invoices().mark_paid(inv.id).await.unwrap();
    assert_eq!(paid.status, InvoiceStatus::Paid);
    refused(admin.invoices().purge(inv.id).await, "not_draft");

    let cancelled = user.invoices().create(invoice(a, line())).await.unwrap();
    user.invoices().send(cancelled.id).await.unwrap();
    refused(user.invoices().void(cancelled.id).await, "admin_only");
    let void = admin.invoices().void(cancelled.id).await.unwrap();
    assert_eq!(void.status, InvoiceStatus::Void);
    refused(admin.invoices().delete(cancelled.id).await, "not_draft");
    refused(admin.invoices().purge(cancelled.id).await, "not_draft");

    // Every invoice that was sent is still there with its number, in order.
    let mut kept = Vec::new();
    for id in [inv.id, cancelled.id] {
        kept.push(admin.invoices().get(id).await.unwrap().number.clone());
    }
    assert_eq!(kept, ["INV-000002", "INV-000003"]);
}

crate::on_both_backends!(
    sent_invoices_are_voided_never_deleted,
    totals_numbers_and_lifecycle,
    numbering_is_per_organization_and_gap_free,
    numbering_under_concurrency
);
