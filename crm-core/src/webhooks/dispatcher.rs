//! The delivering side, run by the [`crate::Worker`]: turns the change feed into deliveries and
//! sends them, with retries, per-record order, leases and the disabling of dead endpoints.
//!
//! Each pass, for every organization with subscriptions:
//! 1. **Fan out.** For each active subscription behind the feed's head, the changes after its
//!    cursor that its event types select become `pending` deliveries, and the cursor moves, in
//!    one transaction. The cursor is compared-and-set first, so two workers never both write a
//!    page; a crash before the commit leaves the cursor where it was (the feed is the outbox).
//! 2. **Claim.** Due deliveries are leased (`leased_until`) and their attempt counted, oldest
//!    first, except one whose record has an earlier delivery still pending: a record's changes
//!    arrive in order. A worker killed mid-delivery lets the lease run out, and the next one
//!    sends the same delivery, with the same `webhook-id` (at least once).
//! 3. **Send** each claimed delivery through the [`WebhookTransport`] in its own task, up to [`WebhookSettings::concurrency`]
//!    at once, and record the outcome.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::destination::Destination;
use super::signature;
use super::subscriptions::EventTypes;
use super::transport::{Answer, Outgoing, WebhookTransport};
use crate::access::resolve::of_permission_set;
use crate::changes::{Change, cursor_position, cursor_text};
use crate::context::TenantContext;
use crate::crm::Crm;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::organizations::OrganizationId;
use crate::record::screen_events;
use crate::storage::{Backend, Conn, Rows, Sql};
use crate::tenant::Tenant;
use crate::time::now;

/// How the worker delivers webhooks.
///
/// ```
/// use std::time::Duration;
/// use crm_core::WebhookSettings;
/// let settings = WebhookSettings { poll: Duration::from_millis(200), ..WebhookSettings::default() };
/// assert_eq!(settings.give_up_after, chrono::TimeDelta::hours(24));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// How often the feed and the due deliveries are checked (1 s).
    pub poll: Duration,
    /// How long a receiver has to answer (15 s). A delivery is leased for twice that plus
    /// 5 s: a worker killed mid-delivery has it sent again by another after that.
    pub timeout: Duration,
    /// Deliveries sent at once by this worker (16).
    pub concurrency: usize,
    /// The first retry's delay (5 s); each next one is four times longer, up to
    /// `longest_retry`, with ±25 % jitter.
    pub first_retry: Duration,
    /// The longest delay between two attempts (10 h).
    pub longest_retry: Duration,
    /// How long a delivery is retried before it is `failed`, and how long a subscription may
    /// fail without a success before it is disabled (24 h).
    pub give_up_after: TimeDelta,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            timeout: Duration::from_secs(15),
            concurrency: 16,
            first_retry: Duration::from_secs(5),
            longest_retry: Duration::from_secs(10 * 3600),
            give_up_after: TimeDelta::hours(24),
        }
    }
}

impl WebhookSettings {
    fn lease(&self) -> TimeDelta {
        TimeDelta::from_std(self.timeout * 2 + Duration::from_secs(5))
            .unwrap_or(TimeDelta::minutes(1))
    }

    /// The delay after the `attempt`th attempt failed (1-based), with jitter.
    pub(crate) fn backoff(&self, attempt: i32) -> Duration {
        let exp = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        let base = self
            .first_retry
            .saturating_mul(4u32.saturating_pow(exp))
            .min(self.longest_retry);
        base.mul_f64(0.75 + fastrand_unit() * 0.5)
    }
}

fn fastrand_unit() -> f64 {
    use rand::Rng as _;
    rand::rng().random::<f64>()
}

/// The body of a delivery (Standard Webhooks' `type`, `timestamp`, `data`); `data` is the
/// change as the feed lists it, cursor included.
#[derive(Serialize)]
struct Body<'a> {
    r#type: &'a str,
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    timestamp: DateTime<Utc>,
    data: &'a Change,
}

/// What the worker needs of a subscription.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Subscription {
    id: Uuid,
    url: String,
    #[sqlx(try_from = "String")]
    event_types: EventTypes,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_until: Option<DateTime<Utc>>,
    feed_cursor: String,
    head: Option<i64>,
    /// The permission set its deliveries are seen with, if any.
    permission_set_id: Option<Uuid>,
}

/// A delivery taken by this worker.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Claimed {
    id: Uuid,
    subscription_id: Uuid,
    event_id: Uuid,
    event_type: String,
    feed_position: i64,
    attempts: i32,
    retry_from: Option<DateTime<Utc>>,
}

/// What every pass and every attempt of one worker shares.
#[derive(Debug, Clone)]
struct Dispatcher {
    crm: Crm,
    transport: Arc<dyn WebhookTransport>,
    settings: Arc<WebhookSettings>,
    /// One per delivery in flight, up to [`WebhookSettings::concurrency`].
    permits: Arc<Semaphore>,
}

/// Fans out, claims and sends until `stopped`, then lets the deliveries in flight finish
/// within `grace`.
pub(crate) async fn run(
    crm: Crm,
    transport: Arc<dyn WebhookTransport>,
    settings: WebhookSettings,
    mut stopped: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut tick = tokio::time::interval(settings.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let d = Dispatcher {
        crm,
        transport,
        permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
        settings: Arc::new(settings),
    };
    let mut inflight = JoinSet::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.wait_for(|s| *s) => break,
        }
        while inflight.try_join_next().is_some() {}
        if let Err(e) = d.pass(&mut inflight).await {
            tracing::warn!(error = %e, "webhook delivery pass failed; trying again");
        }
    }
    let drain = async { while inflight.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drain).await.is_err() {
        tracing::warn!(
            "webhook deliveries still in flight at stop; their leases will run out and another worker sends them"
        );
    }
}

impl Dispatcher {
    /// One pass over every organization with subscriptions.
    async fn pass(&self, inflight: &mut JoinSet<()>) -> Result<()> {
        let q =
            Sql::new("select id from organizations where webhook_subscriptions > 0 order by id");
        let orgs: Vec<(Uuid,)> = self.crm.pool().global().await?.conn().fetch_all(&q).await?;
        for (org,) in orgs {
            let org = OrganizationId::from_uuid(org);
            let t = self.crm.tenant(&TenantContext::system(org));
            if let Err(e) = self.organization_pass(&t, inflight).await {
                tracing::warn!(org = %org, error = %e, "webhook delivery failed for an organization");
            }
        }
        Ok(())
    }

    async fn organization_pass(&self, t: &Tenant, inflight: &mut JoinSet<()>) -> Result<()> {
        let org = t.context().organization_id();
        let mut q = Sql::new(
            "select s.id, s.url, s.event_types, s.secret, s.previous_secret, s.previous_secret_until, s.feed_cursor, h.position as head, s.permission_set_id from webhook_subscriptions s left join feed_heads h on h.organization_id = s.organization_id where s.organization_id = ",
        );
        q.bind(org).push(" and s.active");
        let subs: Vec<Subscription> = t.session().await?.conn().fetch_all(&q).await?;
        for sub in &subs {
            let behind = match (cursor_position(&sub.feed_cursor), sub.head) {
                (Some(at), Some(head)) => at < head,
                (_, head) => head.is_some(),
            };
            if behind && let Err(e) = fan_out(t, sub).await {
                tracing::warn!(org = %org, subscription = %sub.id, error = %e, "reading the change feed for a webhook failed");
            }
        }
        let free = self.permits.available_permits();
        if subs.is_empty() || free == 0 {
            return Ok(());
        }
        let claimed = claim(t, &self.settings, free).await?;
        let subs: HashMap<Uuid, Arc<Subscription>> =
            subs.into_iter().map(|s| (s.id, Arc::new(s))).collect();
        for c in claimed {
            let Some(sub) = subs.get(&c.subscription_id).cloned() else {
                continue;
            };
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                break;
            };
            let attempt = Attempt {
                t: t.clone(),
                d: self.clone(),
                sub,
                c,
            };
            inflight.spawn(async move {
                if let Err(e) = attempt.run().await {
                    tracing::warn!(delivery = %attempt.c.id, error = %e, "recording a webhook delivery failed; its lease will run out and it is sent again");
                }
                drop(permit);
            });
        }
        Ok(())
    }
}

/// Turns the changes after the subscription's cursor into deliveries, a page per transaction.
async fn fan_out(t: &Tenant, sub: &Subscription) -> Result<()> {
    let org = t.context().organization_id();
    let mut cursor = sub.feed_cursor.clone();
    loop {
        let page = match t.changes().after(Some(&cursor), 500).await {
            Ok(page) => page,
            Err(Error::Gone(_)) => {
                let why = "the change feed no longer holds the changes after this subscription's place (retention): replay from a later point to resume";
                let mut s = t.session().await?;
                return disable(&mut s.conn(), org, sub.id, why).await;
            }
            Err(e) => return Err(e),
        };
        let Some(last) = page.data.last() else {
            return Ok(());
        };
        let next = last.cursor.clone();
        let at = now();
        let mut s = t.session().await?;
        let mut tx = s.begin().await?;
        let out = async {
            let mut conn = tx.conn();
            let mut cas = Sql::new("update webhook_subscriptions set feed_cursor = ");
            cas.bind(next.as_str()).push(" where organization_id = ").bind(org);
            cas.push(" and id = ").bind(sub.id).push(" and feed_cursor = ").bind(cursor.as_str());
            if conn.execute(&cas).await? == 0 {
                // Another worker (or a replay) moved it: this page is theirs.
                return Ok(false);
            }
            let columns = vec![
                "organization_id", "id", "subscription_id", "event_id", "event_type",
                "record_id", "feed_position", "occurred_at", "next_attempt_at", "created_at",
            ];
            let mut rows = Rows::new("webhook_deliveries", columns, page.data.len());
            for change in &page.data {
                let e = &change.event;
                if !sub.event_types.matches(&e.entity, e.action) {
                    continue;
                }
                let position = cursor_position(&change.cursor).unwrap_or_default();
                rows.push(org).push(Uuid::now_v7()).push(sub.id).push(e.id);
                rows.push(format!("{}.{}", e.entity, e.action.as_str()));
                rows.push(e.record_id).push(position).push(e.occurred_at);
                rows.push(at).push(at);
            }
            // A replay brings back deliveries already made: they are sent again.
            let tail = " on conflict (organization_id, subscription_id, event_id) do update set status = 'pending', next_attempt_at = excluded.next_attempt_at, retry_from = null, leased_until = null where webhook_deliveries.status <> 'pending'";
            for q in rows.statements(conn.backend(), tail)? {
                conn.execute(&q).await?;
            }
            Ok(true)
        }
        .await;
        if !tx.settle(out).await? || page.next_cursor.is_none() {
            return Ok(());
        }
        cursor = next;
    }
}

/// Leases up to `n` due deliveries of the organization, a record's oldest pending first.
async fn claim(t: &Tenant, settings: &WebhookSettings, n: usize) -> Result<Vec<Claimed>> {
    let org = t.context().organization_id();
    let at = now();
    let mut s = t.session().await?;
    let mut conn = s.conn();
    let backend = conn.backend();
    let mut q = Sql::new("update webhook_deliveries set leased_until = ");
    q.bind(at + settings.lease())
        .push(", attempts = attempts + 1, last_attempt_at = ");
    q.bind(at)
        .push(", retry_from = coalesce(retry_from, ")
        .bind(at);
    q.push(") where organization_id = ")
        .bind(org)
        .push(" and id in (");
    q.push("select d.id from webhook_deliveries d join webhook_subscriptions s on s.organization_id = d.organization_id and s.id = d.subscription_id where d.organization_id = ");
    q.bind(org)
        .push(" and d.status = 'pending' and d.next_attempt_at <= ")
        .bind(at);
    q.push(" and (d.leased_until is null or d.leased_until < ")
        .bind(at);
    q.push(") and s.active and not exists (select 1 from webhook_deliveries p where p.organization_id = d.organization_id and p.subscription_id = d.subscription_id and p.record_id = d.record_id and p.status = 'pending' and (p.feed_position < d.feed_position or (p.feed_position = d.feed_position and p.event_id < d.event_id)))");
    q.push(" order by d.feed_position, d.event_id limit ")
        .bind(n as i64);
    if backend == Backend::Postgres {
        q.push(" for update of d skip locked");
    }
    q.push(") returning id, subscription_id, event_id, event_type, feed_position, attempts, retry_from");
    let mut claimed: Vec<Claimed> = conn.fetch_all(&q).await?;
    claimed.sort_by_key(|c| (c.feed_position, c.event_id));
    Ok(claimed)
}

/// One claimed delivery, sent by a task of its own.
struct Attempt {
    t: Tenant,
    d: Dispatcher,
    sub: Arc<Subscription>,
    c: Claimed,
}

impl Attempt {
    /// Sends the delivery and records what came of it.
    async fn run(&self) -> Result<()> {
        let (t, c) = (&self.t, &self.c);
        let org = t.context().organization_id();
        let mut q = Sql::new("select * from events where organization_id = ");
        q.bind(org).push(" and id = ").bind(c.event_id);
        let mut s = t.session().await?;
        let event: Option<Event> = s.conn().fetch_optional(&q).await?;
        let Some(mut event) = event else {
            let why = "the event is no longer in the change feed (retention)";
            return self.record(Err(why.to_owned())).await;
        };
        // A subscription that names a permission set delivers what its holder may see.
        if let Some(set) = self.sub.permission_set_id {
            let grants = of_permission_set(&mut s.conn(), t, set).await?;
            drop(s);
            // Read as the holder of the set, so that row-level security backs the screening.
            let mut r = t.reading(&grants).await?;
            screen_events(&mut r.conn(), org, &grants, [&mut event]).await?;
        } else {
            drop(s);
        }
        let change = Change {
            cursor: cursor_text(c.feed_position, event.id.uuid()),
            event,
        };
        let body = serde_json::to_vec(&Body {
            r#type: &c.event_type,
            timestamp: change.event.occurred_at,
            data: &change,
        })
        .map_err(|e| Error::Internal(format!("webhook body: {e}")))?;
        let answer = self.send(body).await;
        self.record(answer).await
    }

    async fn send(&self, body: Vec<u8>) -> Answer {
        let (sub, c) = (&*self.sub, &self.c);
        let policy = self.t.crm().webhook_policy();
        // Checked again now: the operator's policy or the name's addresses may have changed.
        let dest = Destination::parse(&sub.url, &policy).map_err(|why| format!("the URL {why}"))?;
        let addresses = dest.addresses(&policy).await?;
        let id = c.event_id.to_string();
        let timestamp = Utc::now().timestamp();
        let mut secrets = vec![sub.secret.as_str()];
        if let (Some(old), Some(until)) = (&sub.previous_secret, sub.previous_secret_until)
            && until > Utc::now()
        {
            secrets.push(old.as_str());
        }
        let signature = signature::sign(&secrets, &id, timestamp, &body);
        self.d
            .transport
            .post(Outgoing {
                tls: dest.https,
                host: dest.host,
                authority: dest.authority,
                target: dest.target,
                addresses,
                headers: vec![
                    ("webhook-id", id),
                    ("webhook-timestamp", timestamp.to_string()),
                    ("webhook-signature", signature),
                ],
                body,
                timeout: self.d.settings.timeout,
            })
            .await
    }

    /// Records the outcome of an attempt: delivered; or retried after a backoff, failed past the
    /// give-up window, and the subscription disabled on `410 Gone` or sustained failure.
    async fn record(&self, answer: Answer) -> Result<()> {
        let (t, sub, c, settings) = (&self.t, &*self.sub, &self.c, &*self.d.settings);
        let org = t.context().organization_id();
        let at = now();
        let mut s = t.session().await?;
        let mut conn = s.conn();
        let (status, error) = match answer {
            Ok(code) if (200..300).contains(&code) => {
                let mut q =
                    Sql::new("update webhook_deliveries set status = 'delivered', delivered_at = ");
                q.bind(at)
                    .push(", response_status = ")
                    .bind(i64::from(code));
                q.push(", last_error = null, leased_until = null where organization_id = ")
                    .bind(org);
                q.push(" and id = ").bind(c.id);
                conn.execute(&q).await?;
                let mut ok = Sql::new(
                    "update webhook_subscriptions set failing_since = null where organization_id = ",
                );
                ok.bind(org)
                    .push(" and id = ")
                    .bind(sub.id)
                    .push(" and failing_since is not null");
                conn.execute(&ok).await?;
                return Ok(());
            }
            Ok(code) => (
                Some(i64::from(code)),
                format!("the endpoint answered HTTP {code}"),
            ),
            Err(why) => (None, why),
        };
        let gone = status == Some(410);
        if gone {
            // Off first, so that no pass claims the delivery again in between.
            disable(&mut conn, org, sub.id, "the endpoint answered 410 Gone").await?;
        }
        let retry_from = c.retry_from.unwrap_or(at);
        let give_up = !gone && at - retry_from >= settings.give_up_after;
        let mut q =
            Sql::new("update webhook_deliveries set leased_until = null, response_status = ");
        q.bind(status).push(", last_error = ").bind(error.as_str());
        if give_up {
            q.push(", status = 'failed'");
        } else {
            let delay = if gone {
                Duration::ZERO
            } else {
                settings.backoff(c.attempts)
            };
            let next = at + TimeDelta::from_std(delay).unwrap_or(TimeDelta::hours(1));
            q.push(", next_attempt_at = ").bind(next);
        }
        q.push(" where organization_id = ")
            .bind(org)
            .push(" and id = ")
            .bind(c.id);
        conn.execute(&q).await?;
        tracing::info!(org = %org, subscription = %sub.id, delivery = %c.id, attempt = c.attempts, error = %error, failed = give_up, "webhook delivery failed");
        if gone {
            return Ok(());
        }
        // Failing since this delivery's window began at the latest: a delivery given up on is
        // sustained failure, unless another delivery succeeded meanwhile.
        let mut f =
            Sql::new("update webhook_subscriptions set failing_since = coalesce(failing_since, ");
        f.bind(retry_from)
            .push(") where organization_id = ")
            .bind(org)
            .push(" and id = ")
            .bind(sub.id);
        f.push(" returning failing_since");
        let since: Option<(Option<DateTime<Utc>>,)> = conn.fetch_optional(&f).await?;
        if let Some((Some(since),)) = since
            && at - since >= settings.give_up_after
        {
            let why = format!(
                "no delivery succeeded since {} (the give-up window is {} s); the last error: {error}",
                since.format("%Y-%m-%d %H:%M:%S UTC"),
                settings.give_up_after.num_seconds()
            );
            disable(&mut conn, org, sub.id, &why).await?;
        }
        Ok(())
    }
}

/// Turns a subscription off, saying why; its changes wait until it is active again.
async fn disable(conn: &mut Conn<'_>, org: OrganizationId, id: Uuid, why: &str) -> Result<()> {
    let at = now();
    let mut q = Sql::new("update webhook_subscriptions set active = ");
    q.bind(false)
        .push(", disabled_reason = ")
        .bind(why)
        .push(", disabled_at = ")
        .bind(at);
    q.push(", updated_at = ")
        .bind(at)
        .push(" where organization_id = ")
        .bind(org);
    q.push(" and id = ").bind(id).push(" and active");
    if conn.execute(&q).await? > 0 {
        tracing::warn!(org = %org, subscription = %id, reason = why, "webhook subscription disabled");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_four_times_longer_with_jitter_up_to_the_longest() {
        let s = WebhookSettings::default();
        for (attempt, base) in [(1, 5.0), (2, 20.0), (3, 80.0), (7, 20_480.0), (9, 36_000.0)] {
            let d = s.backoff(attempt).as_secs_f64();
            assert!(
                d >= base * 0.75 - 1e-6 && d <= base * 1.25 + 1e-6,
                "{attempt}: {d}"
            );
        }
        // The schedule outlasts the give-up window: a failing endpoint is tried for 24 h.
        let total: f64 = (1..=9).map(|a| s.backoff(a).as_secs_f64()).sum();
        assert!(total > 24.0 * 3600.0 * 0.75, "{total}");
    }
}
