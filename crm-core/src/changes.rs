//! The change feed: every change of an organization (creates, updates, trashing, restores,
//! purges, erasures, verbs; users and settings too) in commit order, read by a cursor.
//!
//! It is the event log read another way: what [`crate::Events`] lists newest first for people,
//! the feed lists oldest first for machines that catch up (integrations, webhook delivery,
//! history). Deleted, purged and erased records leave their event as a tombstone, and an
//! erasure blanks what the log held about the person, so the feed never hands out personal data
//! the organization was asked to forget.
//!
//! **Commit order, not id order.** Event ids and database transaction ids are taken when a
//! write starts; a slow writer can commit id 9 after a fast one committed id 10, and a reader
//! that went by ids would have skipped 9 for good. Positions are taken at commit instead
//! (migration `0008_change_feed`): on PostgreSQL a deferred trigger stamps each committing
//! transaction with the next position of its organization under that organization's row lock;
//! SQLite writes one transaction at a time, so a position taken while writing is already in
//! commit order. A reader that has seen a position has seen every position before it.
//!
//! **Retention.** The feed is kept as long as the operator wants (by default: forever). With
//! [`Changes::expire_before`] the oldest commits go, whole, and the organization's horizon
//! records the last one gone; a reader whose cursor is behind it is answered
//! [`Error::Gone`] (`cursor_expired`), never a page that silently skips what was deleted. The
//! event log is the same rows: the history and audit trail of those changes go with them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::context::Actor;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::organizations::OrganizationId;
use crate::record::Page;
use crate::storage::{Backend, Sql};
use crate::tenant::Tenant;
use crate::time::within_years;

/// The largest page of changes.
pub const MAX_CHANGES_PAGE: u32 = 1_000;

/// One change: an event of the log and the cursor just after it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    /// Pass it as `after` to read what came after this change; keep the last one you handled.
    pub cursor: String,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// A position in the feed: after change `id` of commit `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    position: i64,
    id: Uuid,
}

/// The cursor just after change `id` of commit `position`.
pub(crate) fn cursor_text(position: i64, id: Uuid) -> String {
    Cursor { position, id }.encode()
}

/// The commit position of a cursor this feed returned.
pub(crate) fn cursor_position(cursor: &str) -> Option<i64> {
    Cursor::decode(cursor).ok().map(|c| c.position)
}

/// How two cursors of this feed compare (`None` when either is not one).
pub(crate) fn cursor_order(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    let (a, b) = (Cursor::decode(a).ok()?, Cursor::decode(b).ok()?);
    Some((a.position, a.id).cmp(&(b.position, b.id)))
}

impl Cursor {
    fn encode(self) -> String {
        format!("{}.{}", self.position, self.id.simple())
    }

    fn decode(text: &str) -> Result<Self> {
        text.split_once('.')
            .and_then(|(position, id)| {
                let position = position.parse().ok().filter(|p| *p >= 0)?;
                let id = Uuid::try_parse(id).ok()?;
                Some(Cursor { position, id })
            })
            .ok_or_else(|| {
                Error::invalid(
                    "after",
                    "invalid_cursor",
                    "is not a cursor this feed returned",
                )
            })
    }
}

/// What [`Changes::expire_before`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExpiredChanges {
    /// Events deleted.
    pub events: u64,
    /// The feed position they reached: cursors before it now answer `cursor_expired`.
    pub through: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    feed_position: i64,
    #[sqlx(flatten)]
    event: Event,
}

impl Tenant {
    /// The change feed of the organization. Company admins, the system, and API keys (the HTTP
    /// API asks them for the `changes` scope) may read it.
    pub fn changes(&self) -> Changes<'_> {
        Changes { tenant: self }
    }
}

/// Reads the change feed of one organization. Reached through [`Tenant::changes`].
#[derive(Debug, Clone, Copy)]
pub struct Changes<'t> {
    tenant: &'t Tenant,
}

impl Changes<'_> {
    /// Up to `limit` (1–[`MAX_CHANGES_PAGE`]) changes after `after` (from the beginning when
    /// `None`), oldest first. `next_cursor` is set when more changes were already waiting;
    /// otherwise the reader has caught up and polls again later from the last change's
    /// [`Change::cursor`] (or the same `after`, when the page was empty).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use crm_core::{Action, Crm, NewAccount, NewOrganization, TenantContext};
    /// # let crm = Crm::connect("sqlite::memory:").await?;
    /// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
    /// let t = crm.tenant(&TenantContext::system(org.id));
    /// let start = t.changes().head().await?;
    /// t.accounts().create(NewAccount { name: "Globex".into(), ..Default::default() }).await?;
    /// let page = t.changes().after(Some(&start), 100).await?;
    /// assert_eq!(page.data[0].event.action, Action::Created);
    /// // Caught up: poll again from the last change's cursor.
    /// let again = t.changes().after(Some(&page.data[0].cursor), 100).await?;
    /// assert!(again.data.is_empty() && again.next_cursor.is_none());
    /// # Ok::<_, crm_core::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Forbidden`] (`admin_only`) for users below company admin;
    /// [`Error::Validation`] for a `limit` out of range or a cursor this feed did not return.
    pub async fn after(&self, after: Option<&str>, limit: u32) -> Result<Page<Change>> {
        let grants = self.tenant.require_changes().await?;
        crate::validation::page_limit(limit, MAX_CHANGES_PAGE)?;
        let after = after.map(Cursor::decode).transpose()?;
        let org = self.tenant.context().organization_id();
        // Bound to a restricted reader's reach, so that row-level security backs the
        // screening below.
        let mut s = self.tenant.reading(&grants).await?;
        let mut conn = s.conn();
        let backend = conn.backend();
        let position = backend.feed_position();
        let mut q = Sql::new(backend.feed_select());
        q.bind(org);
        if let Some(c) = after {
            // Spelled out (not a row comparison) so that the position's index serves it.
            q.push(" and ").push(position).push(" >= ").bind(c.position);
            q.push(" and (").push(position).push(" > ").bind(c.position);
            q.push(" or e.id > ").bind(c.id).push(")");
        }
        q.push(" order by ")
            .push(position)
            .push(", e.id")
            .limit(limit + 1);
        let mut rows: Vec<Row> = conn.fetch_all(&q).await?;
        // A reader restricted by a permission set gets tombstones for records out of reach,
        // and no hidden fields.
        crate::record::screen_events(
            &mut conn,
            org,
            &grants,
            rows.iter_mut().map(|r| &mut r.event),
        )
        .await?;
        // After the read: a retention sweep that committed before it also moved the horizon
        // this sees, so no page that lacks deleted changes goes out as complete.
        if let Some(c) = after {
            let mut h = Sql::new(
                "select expired_through, expired_through_id from feed_heads where organization_id = ",
            );
            h.bind(org);
            let horizon: Option<(i64, Option<Uuid>)> = conn.fetch_optional(&h).await?;
            if let Some((through, Some(last))) = horizon
                && (c.position, c.id) < (through, last)
            {
                return Err(Error::gone(
                    "cursor_expired",
                    "changes after this cursor were deleted by the retention policy: read again from the beginning (or `head`) and resynchronize",
                ));
            }
        }
        let data: Vec<Change> = rows
            .into_iter()
            .map(|r| Change {
                cursor: Cursor {
                    position: r.feed_position,
                    id: r.event.id.uuid(),
                }
                .encode(),
                event: r.event,
            })
            .collect();
        Ok(Page::of(data, limit as usize, |c| c.cursor.clone()))
    }

    /// The cursor of the feed's present end: reading after it returns only changes committed
    /// later (for a reader that starts now rather than from the beginning).
    ///
    /// # Errors
    /// [`Error::Forbidden`] (`admin_only`) for users below company admin.
    pub async fn head(&self) -> Result<String> {
        self.tenant.require_changes().await?;
        let org = self.tenant.context().organization_id();
        let mut q = Sql::new("select position from feed_heads where organization_id = ");
        q.bind(org);
        let mut s = self.tenant.session().await?;
        let head: Option<(i64,)> = s.conn().fetch_optional(&q).await?;
        let position = head.map_or(0, |(p,)| p);
        Ok(Cursor {
            position,
            id: Uuid::max(),
        }
        .encode())
    }

    /// The cursor just before the first change that entered the feed at or after `at`: reading
    /// after it returns the changes from then on (the start of the feed when all are later).
    ///
    /// # Errors
    /// [`Error::Forbidden`] (`admin_only`) for users below company admin;
    /// [`Error::Validation`] (`out_of_range`) for a time outside the years 1 to 9999.
    pub async fn cursor_before(&self, at: DateTime<Utc>) -> Result<String> {
        self.tenant.require_changes().await?;
        let at = within_years("at", at)?;
        let org = self.tenant.context().organization_id();
        let mut s = self.tenant.session().await?;
        let mut conn = s.conn();
        let backend = conn.backend();
        let before: Option<(i64, Uuid)> =
            conn.fetch_optional(&last_before(backend, org, at)).await?;
        let (position, id) = before.unwrap_or((0, Uuid::nil()));
        Ok(cursor_text(position, id))
    }

    /// Deletes the organization's oldest commits, whole, up to the last one committed before
    /// `before`, with their events (the audit trail and field history of those changes go too),
    /// and moves the horizon: readers whose cursor is behind it get [`Error::Gone`]. For the
    /// system context only (an operator's retention policy, `crm sweep --keep-changes-days`);
    /// it runs as the database URL's role, since the application role may not delete events.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use crm_core::{Crm, NewAccount, NewOrganization, TenantContext};
    /// # let crm = Crm::connect("sqlite::memory:").await?;
    /// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
    /// let t = crm.tenant(&TenantContext::system(org.id));
    /// t.accounts().create(NewAccount { name: "Globex".into(), ..Default::default() }).await?;
    /// let expired = t.changes().expire_before(chrono::Utc::now()).await?;
    /// assert_eq!(expired.events, 1);
    /// assert!(t.changes().after(None, 10).await?.data.is_empty());
    /// # Ok::<_, crm_core::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Forbidden`] (`system_only`) for any context but the system's;
    /// [`Error::Validation`] (`out_of_range`) for a time outside the years 1 to 9999.
    pub async fn expire_before(&self, before: DateTime<Utc>) -> Result<ExpiredChanges> {
        let ctx = self.tenant.context();
        if ctx.actor() != Actor::System {
            return Err(Error::forbidden(
                "system_only",
                "only the system (an operator's retention policy) expires the change feed",
            ));
        }
        let before = within_years("before", before)?;
        let org = ctx.organization_id();
        let mut owner = self.tenant.crm().pool().owner(org).await?;
        let mut tx = owner.begin().await?;
        let out = async {
            let mut conn = tx.conn();
            let backend = conn.backend();
            let Some((through, through_id)): Option<(i64, Uuid)> = conn
                .fetch_optional(&last_before(backend, org, before))
                .await?
            else {
                return Ok(ExpiredChanges::default());
            };
            let mut events = Sql::new(backend.feed_delete_events());
            events.bind(org).push(" and ").push(backend.feed_position());
            events.push(" <= ").bind(through).push(")");
            let deleted = conn.execute(&events).await?;
            if let Some(commits) = backend.feed_delete_commits() {
                let mut q = Sql::new(commits);
                q.bind(org).push(" and position <= ").bind(through);
                conn.execute(&q).await?;
            }
            let mut head = Sql::new("update feed_heads set expired_through = ");
            head.bind(through)
                .push(", expired_through_id = ")
                .bind(through_id);
            head.push(" where organization_id = ").bind(org);
            head.push(" and expired_through < ").bind(through);
            conn.execute(&head).await?;
            Ok(ExpiredChanges {
                events: deleted,
                through,
            })
        }
        .await;
        tx.settle(out).await
    }
}

/// The position and id of the organization's last change that entered the feed before `at`.
fn last_before(backend: Backend, org: OrganizationId, at: DateTime<Utc>) -> Sql {
    let mut last = Sql::new(backend.feed_last_before());
    last.bind(org)
        .push(" and ")
        .push(backend.feed_time())
        .push(" < ");
    last.bind(at)
        .push(" order by ")
        .push(backend.feed_position());
    last.push(" desc, e.id desc limit 1");
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_they_did_not_write() {
        let c = Cursor {
            position: 42,
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in ["", "42", "x.y", "-1.0000", "42.not-a-uuid", "1.2.3"] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }
}
