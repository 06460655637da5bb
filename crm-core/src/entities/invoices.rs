//! Invoices: line items, totals computed by the library, gap-free numbers per organization,
//! and the `draft → sent → paid` lifecycle (or `void`, or `overdue`).
//!
//! # Financial records
//!
//! Numbers are taken in the creating transaction from a per-organization counter: in order,
//! never twice, and a rolled-back creation gives its number back, so no gaps. Once an invoice
//! leaves the draft state (sent, overdue, paid, void) it is never trashed or purged
//! (`not_draft`, [`Entity::may_trash`]); voiding is how one is cancelled, and its number stays
//! on it. Only a draft (never sent to anyone) may be trashed, and purged by a company admin; the
//! event log keeps its `created` entry with the number and its `purged` entry, so the sequence
//! stays accounted for. Marking paid and voiding are for company admins.
//!
//! # Rounding
//!
//! Amounts are integers in minor units of the invoice currency. For each line,
//! `subtotal = quantity × unit_price_minor` exactly, and
//! `tax = subtotal × tax_rate_bp / 10 000` rounded half away from zero (so 0.5 of a cent
//! becomes 1 cent, and −0.5 becomes −1). The invoice's subtotal and tax are the sums of its
//! lines' (tax is rounded per line, not on the total), and `total = subtotal + tax`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use crate::entities::EntityKind;
use crate::entities::{AccountId, OpportunityId};
use crate::error::{Error, Result};
use crate::events::Action;
use crate::id::Id;
use crate::money::{MAX_MINOR, Money};
use crate::record::{Entity, Operation, Record, Records, WriteContext};
use crate::storage::Sql;
use crate::time::now;
use crate::validation::Validator;

/// The id of an invoice.
pub type InvoiceId = Id<Invoice>;

/// Most line items on one invoice.
pub const MAX_LINE_ITEMS: usize = 500;

crate::text_enum! {
    /// Where an invoice stands. Only drafts can be edited.
    pub enum InvoiceStatus {
        /// Being prepared; editable.
        Draft = "draft",
        /// Sent to the customer.
        Sent = "sent",
        /// Paid in full.
        Paid = "paid",
        /// Cancelled.
        Void = "void",
        /// Sent and past its due date.
        Overdue = "overdue",
    }
}

/// One line of an invoice. The library computes its amounts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LineItem {
    /// What is billed.
    pub description: String,
    /// How many (a positive integer).
    pub quantity: i64,
    /// Price of one, in minor units (negative for a discount line).
    pub unit_price_minor: i64,
    /// Tax rate in basis points (2000 = 20 %), 0 to 10 000.
    #[serde(default)]
    pub tax_rate_bp: i64,
    /// `quantity × unit_price_minor` (computed).
    #[serde(default)]
    pub subtotal_minor: i64,
    /// Tax of the line (computed; see the module's rounding rule).
    #[serde(default)]
    pub tax_minor: i64,
    /// `subtotal_minor + tax_minor` (computed).
    #[serde(default)]
    pub total_minor: i64,
}

impl LineItem {
    /// A line; amounts are computed when the invoice is written.
    pub fn new(description: &str, quantity: i64, unit_price_minor: i64, tax_rate_bp: i64) -> Self {
        Self {
            description: description.into(),
            quantity,
            unit_price_minor,
            tax_rate_bp,
            ..Default::default()
        }
    }
}

/// `value × bp / 10 000`, rounded half away from zero; `None` on overflow.
fn apply_rate(value: i64, bp: i64) -> Option<i64> {
    let product = i128::from(value) * i128::from(bp);
    let rounded = (product.abs() + 5_000) / 10_000;
    i64::try_from(if product < 0 { -rounded } else { rounded }).ok()
}

crate::record_type! {
    /// A bill sent to an account.
    pub struct Invoice / NewInvoice / InvoicePatch {
        /// The billed account (required, same organization; never null once stored).
        #[cfg_attr(feature = "openapi", schema(nullable = false))]
        account_id: Option<AccountId>,
        /// The opportunity it bills, if any.
        opportunity_id: Option<OpportunityId>,
        /// ISO 4217 currency of every amount (required).
        currency: String [currency],
        /// Issue date (set to the send date if empty when sent).
        issue_date: Option<NaiveDate>,
        /// Due date.
        due_date: Option<NaiveDate> [sortable],
        /// The lines, in order.
        #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::line_items))]
        line_items: Json<Vec<LineItem>>,
        /// Free text printed on the invoice.
        notes: Option<String> [max_length(10_000)],
    }
    readonly {
        /// Per-organization, gap-free number: `INV-000001`, `INV-000002`…
        number: String [sortable, max_length(50)],
        /// Lifecycle status.
        status: InvoiceStatus [sortable],
        /// Sum of the lines' subtotals.
        subtotal_minor: i64,
        /// Sum of the lines' taxes.
        tax_minor: i64,
        /// `subtotal_minor + tax_minor`.
        total_minor: i64 [sortable],
        /// When it was sent.
        sent_at: Option<DateTime<Utc>>,
        /// When it was paid.
        paid_at: Option<DateTime<Utc>>,
        /// When it was voided.
        voided_at: Option<DateTime<Utc>>,
    }
}

impl Invoice {
    /// What it bills in all: [`Invoice::total_minor`] in its currency.
    pub fn total(&self) -> Option<Money> {
        Money::from_columns(Some(self.total_minor), Some(&self.currency))
    }

    /// Computes every line's and the invoice's amounts.
    fn compute_totals(&mut self) -> Result<()> {
        let overflow = || Error::invalid("line_items", "out_of_range", "amounts are too large");
        let (mut subtotal, mut tax) = (0i64, 0i64);
        for line in self.line_items.0.iter_mut() {
            line.subtotal_minor = line
                .quantity
                .checked_mul(line.unit_price_minor)
                .ok_or_else(overflow)?;
            line.tax_minor =
                apply_rate(line.subtotal_minor, line.tax_rate_bp).ok_or_else(overflow)?;
            line.total_minor = line
                .subtotal_minor
                .checked_add(line.tax_minor)
                .ok_or_else(overflow)?;
            subtotal = subtotal
                .checked_add(line.subtotal_minor)
                .ok_or_else(overflow)?;
            tax = tax.checked_add(line.tax_minor).ok_or_else(overflow)?;
        }
        self.subtotal_minor = subtotal;
        self.tax_minor = tax;
        self.total_minor = subtotal.checked_add(tax).ok_or_else(overflow)?;
        if [subtotal, tax, self.total_minor]
            .iter()
            .any(|n| n.unsigned_abs() > MAX_MINOR.unsigned_abs())
        {
            return Err(overflow());
        }
        Ok(())
    }
}

impl Entity for Invoice {
    /// Only drafts are editable: a merge leaves a sent invoice's links as they were issued.
    const REPOINTABLE: Option<&'static str> = Some("status = 'draft'");

    const KIND: EntityKind = EntityKind::Invoice;

    fn validate(&self, v: &mut Validator) {
        v.check(
            self.account_id.is_some(),
            "account_id",
            "required",
            "an invoice bills an account",
        );
        if let (Some(issue), Some(due)) = (self.issue_date, self.due_date) {
            v.check(
                due >= issue,
                "due_date",
                "out_of_range",
                "must not be before issue_date",
            );
        }
        v.check(
            self.line_items.0.len() <= MAX_LINE_ITEMS,
            "line_items",
            "too_many",
            "an invoice has at most 500 lines",
        );
        for (i, line) in self.line_items.0.iter().enumerate() {
            v.text(
                &format!("line_items[{i}].description"),
                &line.description,
                true,
                500,
            );
            v.check(
                line.quantity > 0,
                &format!("line_items[{i}].quantity"),
                "out_of_range",
                "must be at least 1",
            );
            v.check(
                (0..=10_000).contains(&line.tax_rate_bp),
                &format!("line_items[{i}].tax_rate_bp"),
                "out_of_range",
                "must be between 0 and 10000",
            );
        }
    }

    /// Invoices are financial records: once sent (sent, paid, overdue, void) an invoice is never
    /// trashed or purged, so its number stays accounted for; voiding is the way to cancel one.
    /// Only drafts may be trashed (and purged).
    fn may_trash(&self) -> Result<()> {
        if self.status == InvoiceStatus::Draft {
            return Ok(());
        }
        Err(Error::conflict(
            "not_draft",
            format!(
                "invoice {} is {}; only drafts can be deleted (void it instead)",
                self.number, self.status
            ),
        ))
    }

    /// Only drafts are editable; totals are recomputed on every write; a new invoice takes the
    /// next number of its organization inside the creating transaction.
    async fn before_write(
        &mut self,
        w: &mut WriteContext<'_, '_>,
        before: Option<&Self>,
    ) -> Result<()> {
        if let (Operation::Update, Some(b)) = (w.operation(), before)
            && b.status != InvoiceStatus::Draft
        {
            return Err(Error::conflict(
                "not_draft",
                format!(
                    "invoice {} is {}; only drafts can be edited",
                    b.number, b.status
                ),
            ));
        }
        self.compute_totals()?;
        if before.is_none() {
            self.status = InvoiceStatus::Draft;
            // The upsert locks the organization's counter row until commit: concurrent creators
            // queue, and a rolled-back creation gives its number back. No gaps, no duplicates.
            let mut q =
                Sql::new("insert into invoice_counters (organization_id, last_number) values (");
            q.bind(w.context().organization_id())
                .push(", 1) on conflict (organization_id) do update ");
            q.push("set last_number = invoice_counters.last_number + 1 returning last_number");
            let (n,): (i64,) = w.conn().fetch_one(&q).await?;
            self.number = format!("INV-{n:06}");
        }
        Ok(())
    }
}

impl Records<'_, Invoice> {
    /// Sends a draft: it needs at least one line; the issue date defaults to today.
    pub async fn send(&self, id: InvoiceId) -> Result<Record<Invoice>> {
        self.transition(id, Action::Sent, &[InvoiceStatus::Draft], |i| {
            if i.line_items.0.is_empty() {
                return Err(Error::invalid(
                    "line_items",
                    "required",
                    "an invoice needs a line to be sent",
                ));
            }
            let at = now();
            i.status = InvoiceStatus::Sent;
            i.sent_at = Some(at);
            i.issue_date.get_or_insert(at.date_naive());
            Ok(())
        })
        .await
    }

    /// Records payment of a sent or overdue invoice. Company admins only.
    ///
    /// # Errors
    /// [`Error::Forbidden`] (`admin_only`) for plain users; [`Error::Conflict`] (`wrong_state`)
    /// for an invoice that is not sent or overdue.
    pub async fn mark_paid(&self, id: InvoiceId) -> Result<Record<Invoice>> {
        self.finance("mark invoices paid")?;
        self.transition(
            id,
            Action::Paid,
            &[InvoiceStatus::Sent, InvoiceStatus::Overdue],
            |i| {
                i.status = InvoiceStatus::Paid;
                i.paid_at = Some(now());
                Ok(())
            },
        )
        .await
    }

    /// Voids an invoice that is not paid. Its number stays taken. Company admins only.
    ///
    /// # Errors
    /// [`Error::Forbidden`] (`admin_only`) for plain users; [`Error::Conflict`] (`wrong_state`)
    /// for a paid or void invoice.
    pub async fn void(&self, id: InvoiceId) -> Result<Record<Invoice>> {
        self.finance("void invoices")?;
        let from = [
            InvoiceStatus::Draft,
            InvoiceStatus::Sent,
            InvoiceStatus::Overdue,
        ];
        self.transition(id, Action::Voided, &from, |i| {
            i.status = InvoiceStatus::Void;
            i.voided_at = Some(now());
            Ok(())
        })
        .await
    }

    /// Marks every sent invoice due before `today` as overdue; returns how many changed.
    /// (A daily job calls it.)
    pub async fn mark_overdue(&self, today: NaiveDate) -> Result<usize> {
        let mut marked = 0;
        loop {
            let q = crate::ListQuery::default()
                .filter("status", crate::Op::Eq, InvoiceStatus::Sent.as_str())
                .filter("due_date", crate::Op::Lt, today.to_string())
                .limit(100);
            let page = self.list(&q).await?;
            if page.data.is_empty() {
                return Ok(marked);
            }
            for invoice in page.data {
                let out = self
                    .transition(invoice.id, Action::Overdue, &[InvoiceStatus::Sent], |i| {
                        i.status = InvoiceStatus::Overdue;
                        Ok(())
                    })
                    .await;
                match out {
                    Ok(_) => marked += 1,
                    // Paid or voided meanwhile: nothing to do.
                    Err(Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// Settling and cancelling invoices moves money on the books: company admins only.
    fn finance(&self, what: &str) -> Result<()> {
        crate::access::roles::require_admin(self.tenant().context(), what)
    }

    async fn transition(
        &self,
        id: InvoiceId,
        action: Action,
        from: &[InvoiceStatus],
        apply: impl Fn(&mut Invoice) -> Result<()>,
    ) -> Result<Record<Invoice>> {
        self.change(id, None, Operation::Verb(action), action, |current| {
            if !from.contains(&current.status) {
                return Err(Error::conflict(
                    "wrong_state",
                    format!(
                        "invoice {} is {}; it cannot be {action}",
                        current.number, current.status
                    ),
                ));
            }
            let mut invoice = current.fields.clone();
            apply(&mut invoice)?;
            Ok((invoice, current.custom_fields.clone()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(apply_rate(1050, 1000), Some(105));
        assert_eq!(apply_rate(5, 1000), Some(1)); // 0.5 → 1
        assert_eq!(apply_rate(4, 1000), Some(0)); // 0.4 → 0
        assert_eq!(apply_rate(-5, 1000), Some(-1)); // −0.5 → −1
        assert_eq!(apply_rate(333, 2000), Some(67)); // 66.6 → 67
        assert_eq!(apply_rate(i64::MAX, 10_000), Some(i64::MAX));
    }

    #[test]
    fn totals_sum_rounded_lines() {
        let mut inv = Invoice {
            account_id: None,
            opportunity_id: None,
            currency: "EUR".into(),
            issue_date: None,
            due_date: None,
            line_items: Json(vec![
                LineItem::new("a", 3, 333, 2000),
                LineItem::new("b", 1, -100, 2000),
            ]),
            notes: None,
            number: String::new(),
            status: InvoiceStatus::Draft,
            subtotal_minor: 0,
            tax_minor: 0,
            total_minor: 0,
            sent_at: None,
            paid_at: None,
            voided_at: None,
        };
        inv.compute_totals().unwrap();
        assert_eq!(
            (
                inv.line_items.0[0].subtotal_minor,
                inv.line_items.0[0].tax_minor
            ),
            (999, 200)
        );
        assert_eq!(
            (
                inv.line_items.0[1].subtotal_minor,
                inv.line_items.0[1].tax_minor
            ),
            (-100, -20)
        );
        assert_eq!(
            (inv.subtotal_minor, inv.tax_minor, inv.total_minor),
            (899, 180, 1079)
        );
    }
}
