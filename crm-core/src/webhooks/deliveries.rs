//! The delivery log of a subscription, and replays.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::subscriptions::{WebhookSubscriptionId, WebhookSubscriptions};
use crate::error::{Error, Result};
use crate::events::EventId;
use crate::id::Id;
use crate::record::Page;
use crate::storage::Sql;
use crate::time::{now, within_years};

/// The id of a delivery.
pub type WebhookDeliveryId = Id<WebhookDelivery>;

/// How long the delivery log keeps a delivered or failed delivery: the daily sweep deletes
/// older ones (`Tenant::sweep_expired`).
pub const DELIVERY_LOG_RETENTION: TimeDelta = TimeDelta::days(30);

/// The largest page of the delivery log.
pub const MAX_DELIVERIES_PAGE: u32 = 1_000;

crate::text_enum! {
    /// Where a delivery stands.
    pub enum DeliveryStatus {
        /// Waiting for its first attempt or a retry (or for its subscription to be active).
        Pending = "pending",
        /// The receiver answered 2xx.
        Delivered = "delivered",
        /// Every attempt of the retry window failed; a replay sends it again.
        Failed = "failed",
    }
}

/// One event sent (or to be sent) to one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    /// Its id.
    pub id: WebhookDeliveryId,
    /// The subscription.
    pub subscription_id: WebhookSubscriptionId,
    /// The event: also the `webhook-id` header, the same on every attempt and replay, which
    /// receivers de-duplicate on.
    pub event_id: EventId,
    /// `entity.action`, as in the body's `type`.
    pub event_type: String,
    /// The record the event is about; its deliveries go in the order of its changes.
    pub record_id: Uuid,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts so far (replays included).
    pub attempts: i32,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: DateTime<Utc>,
    /// When it was last attempted.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last answer, when there was one.
    pub response_status: Option<i32>,
    /// Why the last attempt failed, when it did.
    pub last_error: Option<String>,
    /// When the receiver accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When the event became this delivery.
    pub created_at: DateTime<Utc>,
}

pub(super) const DELIVERY_COLUMNS: &str = "id, subscription_id, event_id, event_type, record_id, status, attempts, next_attempt_at, last_attempt_at, response_status, last_error, delivered_at, created_at";

/// Where a replay starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayFrom {
    /// Every change committed at or after this time.
    Time(DateTime<Utc>),
    /// Every change after this change-feed cursor ([`crate::Change::cursor`]).
    Cursor(String),
}

impl WebhookSubscriptions<'_> {
    /// The subscription's deliveries, newest first, `status` only if given, after `after` (a
    /// page's `next_cursor`), at most `limit` (1–[`MAX_DELIVERIES_PAGE`]).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown subscription; [`Error::Validation`] for a bad
    /// `limit` or cursor.
    pub async fn deliveries(
        &self,
        id: WebhookSubscriptionId,
        status: Option<DeliveryStatus>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<WebhookDelivery>> {
        crate::validation::page_limit(limit, MAX_DELIVERIES_PAGE)?;
        let after = after
            .map(|a| {
                Uuid::try_parse(a).map_err(|_| {
                    Error::invalid(
                        "after",
                        "invalid_cursor",
                        "is not a cursor this log returned",
                    )
                })
            })
            .transpose()?;
        self.get(id).await?;
        let org = self.org().await?;
        let mut q = Sql::new("select ");
        q.push(DELIVERY_COLUMNS)
            .push(" from webhook_deliveries where organization_id = ");
        q.bind(org).push(" and subscription_id = ").bind(id);
        if let Some(s) = status {
            q.push(" and status = ").bind(s.as_str());
        }
        if let Some(a) = after {
            q.push(" and id < ").bind(a);
        }
        q.push(" order by id desc").limit(limit + 1);
        let mut s = self.tenant.session().await?;
        let rows: Vec<WebhookDelivery> = s.conn().fetch_all(&q).await?;
        Ok(Page::of(rows, limit as usize, |d| d.id.uuid().to_string()))
    }

    /// Sends one delivery again (whatever its status), with the same `webhook-id`, and gives
    /// it a new retry window.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a delivery of no (or another) subscription.
    pub async fn redeliver(
        &self,
        id: WebhookSubscriptionId,
        delivery: WebhookDeliveryId,
    ) -> Result<WebhookDelivery> {
        let org = self.org().await?;
        let mut q =
            Sql::new("update webhook_deliveries set status = 'pending', next_attempt_at = ");
        q.bind(now());
        q.push(", retry_from = null, leased_until = null where organization_id = ");
        q.bind(org).push(" and subscription_id = ").bind(id);
        q.push(" and id = ")
            .bind(delivery)
            .push(" returning ")
            .push(DELIVERY_COLUMNS);
        self.found(&q, "webhook delivery", delivery).await
    }

    /// Sends again every change since `from` that the subscription's event types select:
    /// those delivered or failed already (same `webhook-id`), and those from before the
    /// subscription existed. The worker does the sending; this moves the subscription's place
    /// in the change feed back. Returns the feed cursor it now reads after.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Validation`] for a cursor the feed did not return or a
    /// time outside the years 1 to 9999; [`Error::Gone`] when the feed no longer holds changes that old.
    pub async fn replay(&self, id: WebhookSubscriptionId, from: ReplayFrom) -> Result<String> {
        let org = self.org().await?;
        // The subscription's place now (404 for an unknown one), before the point is read.
        let mut q =
            Sql::new("select feed_cursor from webhook_subscriptions where organization_id = ");
        q.bind(org).push(" and id = ").bind(id);
        let (current,): (String,) = self.found(&q, "webhook subscription", id).await?;
        let changes = self.tenant.changes();
        let cursor = match from {
            ReplayFrom::Cursor(c) => {
                // Checks it, and that the feed still holds what follows it.
                changes.after(Some(&c), 1).await?;
                c
            }
            ReplayFrom::Time(t) => changes.cursor_before(within_years("since", t)?).await?,
        };
        // Only backwards: a replay never skips what is not yet delivered.
        if crate::changes::cursor_order(&cursor, &current) != Some(std::cmp::Ordering::Less) {
            return Ok(current);
        }
        let mut u = Sql::new("update webhook_subscriptions set feed_cursor = ");
        u.bind(cursor.as_str()).push(", updated_at = ").bind(now());
        u.push(" where organization_id = ")
            .bind(org)
            .push(" and id = ")
            .bind(id);
        self.tenant.session().await?.conn().execute(&u).await?;
        Ok(cursor)
    }
}
