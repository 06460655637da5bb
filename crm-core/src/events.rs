//! The event log: one row per write, in the same transaction as the write.
//!
//! It is the audit trail (who changed what, with before and after values) and the outbox that
//! the change feed ([`crate::changes`]), webhook delivery and other background jobs read, so an
//! event exists if and only if its change was committed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::context::{Actor, TenantContext};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::organizations::OrganizationId;
use crate::record::{Page, Referable};
use crate::storage::{Arg, Conn, Rows, Sql};
use crate::tenant::Tenant;
use crate::time::now;

/// The id of an event.
pub type EventId = Id<Event>;

crate::text_enum! {
    /// What happened to a record.
    #[non_exhaustive]
    pub enum Action {
        /// It was created.
        Created = "created",
        /// Some of its fields changed.
        Updated = "updated",
        /// It was moved to the trash.
        Deleted = "deleted",
        /// It was taken back out of the trash.
        Restored = "restored",
        /// It was removed for good.
        Purged = "purged",
        /// A lead was converted.
        Converted = "converted",
        /// An opportunity moved to another stage.
        StageChanged = "stage_changed",
        /// An opportunity was closed (won or lost).
        Closed = "closed",
        /// An invoice was sent.
        Sent = "sent",
        /// An invoice was paid.
        Paid = "paid",
        /// An invoice was voided.
        Voided = "voided",
        /// An invoice passed its due date unpaid.
        Overdue = "overdue",
        /// A task was completed.
        Completed = "completed",
        /// A task was reopened.
        Reopened = "reopened",
        /// A user's role changed.
        RoleChanged = "role_changed",
        /// A user was deactivated.
        Deactivated = "deactivated",
        /// A user was reactivated.
        Reactivated = "reactivated",
        /// A user's password was changed or set (the event holds no password).
        PasswordChanged = "password_changed",
        /// A person's record was erased for good (GDPR); only this tombstone remains.
        Erased = "erased",
        /// Records were merged: on the survivor, the absorbed ids; on each absorbed record (which
        /// goes to the trash), the survivor.
        Merged = "merged",
    }
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// Its id (UUIDv7: ids order events in time).
    pub id: EventId,
    /// The organization.
    pub organization_id: OrganizationId,
    /// The entity (`"account"`).
    pub entity: String,
    /// The record's id.
    pub record_id: Uuid,
    /// What happened.
    pub action: Action,
    /// `"user"`, `"api_key"` or `"system"`.
    pub actor_kind: String,
    /// The user's or key's id.
    pub actor_id: Option<Uuid>,
    /// Changed fields: `{"field": {"before": …, "after": …}}` (only `after` on create).
    #[sqlx(json)]
    pub changes: Map<String, Value>,
    /// When it was committed.
    pub occurred_at: DateTime<Utc>,
    /// The request that made the change (see [`TenantContext::with_request_id`]), when known.
    pub request_id: Option<Uuid>,
}

/// The entity of the events of users (what their services append).
pub(crate) const USER: &str = "user";
/// The entity of the events of custom field definitions.
pub(crate) const CUSTOM_FIELD: &str = "custom_field";
/// The entity of the events of pipelines.
pub(crate) const PIPELINE: &str = "pipeline";
/// The entity of the events of permission sets (and their assignment to API keys).
pub(crate) const PERMISSION_SET: &str = "permission_set";
/// The entity of the events of teams (and their members).
pub(crate) const TEAM: &str = "team";
/// The entity of the events of record shares; the event's record id is the shared record's.
pub(crate) const SHARE: &str = "record_share";

/// Whether events are logged under `entity`: an entity of the registry, or one of the other
/// things whose changes are logged (users, custom field definitions, pipelines, permission sets,
/// teams, record shares).
pub(crate) fn is_logged_entity(entity: &str) -> bool {
    crate::EntityKind::ALL.iter().any(|k| k.name() == entity)
        || [USER, CUSTOM_FIELD, PIPELINE, PERMISSION_SET, TEAM, SHARE].contains(&entity)
}

/// One event to append.
pub(crate) struct Entry {
    pub(crate) record_id: Uuid,
    pub(crate) action: Action,
    pub(crate) changes: Map<String, Value>,
}

/// Appends an event inside the caller's transaction.
pub(crate) async fn append(
    conn: &mut Conn<'_>,
    ctx: &TenantContext,
    entity: &str,
    record_id: Uuid,
    action: Action,
    changes: Map<String, Value>,
) -> Result<()> {
    let entry = Entry {
        record_id,
        action,
        changes,
    };
    append_many(conn, ctx, entity, vec![entry], now()).await
}

/// Appends events that occurred `at` inside the caller's transaction, many rows per statement.
/// A record write passes the time it stamped on its rows, so that a record's `updated_at` is its
/// last event's time (field history rebuilds past states by it).
pub(crate) async fn append_many(
    conn: &mut Conn<'_>,
    ctx: &TenantContext,
    entity: &str,
    entries: Vec<Entry>,
    at: DateTime<Utc>,
) -> Result<()> {
    let actor_kind = match ctx.actor() {
        Actor::User(_) => "user",
        Actor::ApiKey(_) => "api_key",
        Actor::System => "system",
    };
    let position = feed_position(conn, ctx).await?;
    let mut columns = vec![
        "organization_id",
        "id",
        "entity",
        "record_id",
        "action",
        "actor_kind",
        "actor_id",
        "changes",
        "occurred_at",
        "request_id",
    ];
    if position.is_some() {
        columns.push("position");
    }
    let mut rows = Rows::new("events", columns, entries.len());
    for e in entries {
        rows.push(ctx.organization_id()).push(EventId::new());
        rows.push(entity.to_owned()).push(e.record_id);
        rows.push(e.action.as_str()).push(actor_kind);
        rows.push(ctx.actor().id()).push(Value::Object(e.changes));
        rows.push(at).push(ctx.request_id());
        if let Some(p) = position {
            rows.push(p);
        }
    }
    for q in rows.statements(conn.backend(), "")? {
        conn.execute(&q).await?;
    }
    Ok(())
}

/// The change-feed position of events appended now, where the backend takes it as it writes
/// (see [`crate::changes`]); `None` where the commit takes it.
async fn feed_position(conn: &mut Conn<'_>, ctx: &TenantContext) -> Result<Option<i64>> {
    if !conn.backend().stamps_feed_on_write() {
        return Ok(None);
    }
    let mut q = Sql::new("insert into feed_heads (organization_id, position) values (");
    q.bind(ctx.organization_id()).push(
        ", 1) on conflict (organization_id) do update set position = feed_heads.position + 1 returning position",
    );
    let (position,): (i64,) = conn.fetch_one(&q).await?;
    Ok(Some(position))
}

impl Tenant {
    /// The event log (audit trail).
    pub fn events(&self) -> Events<'_> {
        Events::new(self)
    }
}

/// Reads the event log of one organization. Reached through [`Tenant::events`].
#[derive(Debug, Clone, Copy)]
pub struct Events<'t> {
    tenant: &'t Tenant,
}

impl<'t> Events<'t> {
    pub(crate) fn new(tenant: &'t Tenant) -> Self {
        Self { tenant }
    }

    /// The events of one record (of any entity, or a user), newest first, `limit` (≤ 100) per
    /// page; pass the previous page's `next_cursor` to continue.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use crm_core::{Action, Crm, NewAccount, NewOrganization, TenantContext};
    /// # let crm = Crm::connect("sqlite::memory:").await?;
    /// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
    /// let t = crm.tenant(&TenantContext::system(org.id));
    /// let a = t.accounts().create(NewAccount { name: "Globex".into(), ..Default::default() }).await?;
    /// let page = t.events().for_record(a.id, 10, None).await?;
    /// assert_eq!(page.data[0].action, Action::Created);
    /// # Ok::<_, crm_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn for_record<T: Referable>(
        &self,
        id: Id<T>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Event>> {
        let start = Start::after_cursor(cursor)?;
        self.list(Some((T::NAME, &[id.uuid()])), limit, start).await
    }

    /// The events of one record, newest first, from `start` (for the library's own walks of
    /// the log, which may resume at an event rather than after it).
    pub(crate) async fn of_record<T: Referable>(
        &self,
        id: Id<T>,
        limit: u32,
        start: Start,
    ) -> Result<Page<Event>> {
        self.list(Some((T::NAME, &[id.uuid()])), limit, start).await
    }

    /// The events of several records of one entity (a survivor and what was merged into it),
    /// newest first, from `start`.
    pub(crate) async fn of_records<T: Referable>(
        &self,
        ids: &[Uuid],
        limit: u32,
        start: Start,
    ) -> Result<Page<Event>> {
        self.list(Some((T::NAME, ids)), limit, start).await
    }

    /// All events of the organization, newest first.
    pub async fn recent(&self, limit: u32, cursor: Option<&str>) -> Result<Page<Event>> {
        self.list(None, limit, Start::after_cursor(cursor)?).await
    }

    async fn list(
        &self,
        record: Option<(&str, &[Uuid])>,
        limit: u32,
        start: Start,
    ) -> Result<Page<Event>> {
        crate::validation::page_limit(limit, 100)?;
        let ctx = self.tenant.context();
        let mut q = Sql::new("select * from events where organization_id = ");
        q.bind(ctx.organization_id());
        if let Some((entity, ids)) = record {
            q.push(" and entity = ").bind(entity);
            match ids {
                [id] => {
                    q.push(" and record_id = ").bind(*id);
                }
                _ => {
                    q.push(" and record_id in (")
                        .bind_list(ids.iter().map(|id| Arg::Uuid(Some(*id))))
                        .push(")");
                }
            }
        }
        match start {
            Start::Newest => {}
            Start::Before(id) => {
                q.push(" and id < ").bind(id);
            }
            Start::At(id) => {
                q.push(" and id <= ").bind(id);
            }
        }
        q.push(" order by id desc").limit(limit + 1);
        let mut s = self.tenant.session().await?;
        let data: Vec<Event> = s.conn().fetch_all(&q).await?;
        Ok(Page::of(data, limit as usize, |e| e.id.to_string()))
    }
}

/// Where a page of the event log starts, newest first.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Start {
    /// At the newest event.
    Newest,
    /// Just before this event (a page's `next_cursor`).
    Before(EventId),
    /// At this event.
    At(EventId),
}

impl Start {
    /// After a list's `next_cursor`, or at the newest without one.
    fn after_cursor(cursor: Option<&str>) -> Result<Self> {
        match cursor {
            None => Ok(Start::Newest),
            Some(c) => c.parse().map(Start::Before).map_err(|_| {
                Error::invalid(
                    "cursor",
                    "invalid_cursor",
                    "is not a cursor this list returned",
                )
            }),
        }
    }
}
