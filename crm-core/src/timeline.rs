//! The timeline of one record: its activities and its event-log entries, newest first.

use serde::Serialize;
use uuid::Uuid;

use crate::access::rules::Need;
use crate::entities::{Activity, EntityKind};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::record::{Page, Record, activity_scope, readable, redact, screen_events};
use crate::storage::Sql;
use crate::tenant::Tenant;

/// One entry of a timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TimelineItem {
    /// A note, task, call or meeting attached to the record.
    Activity(Box<Record<Activity>>),
    /// A change to the record, from the event log.
    Event(Event),
}

impl TimelineItem {
    /// The entry's id (UUIDv7, so ids order entries in time).
    pub fn id(&self) -> Uuid {
        match self {
            TimelineItem::Activity(a) => a.id.uuid(),
            TimelineItem::Event(e) => e.id.uuid(),
        }
    }
}

impl Tenant {
    /// The timeline of one record of kind `entity`: its activities and event-log entries,
    /// newest first, `limit` (≤ 100) per page; pass the previous page's `next_cursor` to
    /// continue.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the record does not exist in the organization (trashed records
    /// keep their timeline); [`Error::Validation`] for a kind without a timeline (activities).
    pub async fn timeline(
        &self,
        entity: EntityKind,
        id: impl Into<Uuid>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<TimelineItem>> {
        timeline(self, entity, id.into(), limit, cursor).await
    }
}

async fn timeline(
    t: &Tenant,
    entity: EntityKind,
    id: Uuid,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<TimelineItem>> {
    if !entity.has_timeline() {
        return Err(Error::invalid(
            "entity",
            "invalid_choice",
            format!("{} have no timeline", entity.table()),
        ));
    }
    crate::validation::page_limit(limit, 100)?;
    let before: Option<Uuid> = match cursor {
        Some(c) => Some(c.parse().map_err(|_| {
            Error::invalid(
                "cursor",
                "invalid_cursor",
                "is not a cursor this list returned",
            )
        })?),
        None => None,
    };
    let grants = t.grants().await?;
    grants.require_some(entity.table(), Need::Read)?;
    // A timeline shows activities: an API key needs their scope too.
    grants.require_in_scope(EntityKind::Activity.table())?;
    let org = t.context().organization_id();
    let mut s = t.reading(&grants).await?;

    // A record the caller may not read has no timeline for them.
    if readable(&mut s.conn(), org, &grants, entity, &[id])
        .await?
        .is_empty()
    {
        return Err(Error::NotFound {
            entity: entity.as_str(),
            id: Some(id),
        });
    }

    let page = limit + 1;
    let mut q = Sql::new("select ");
    q.push(<Activity as crate::record::Fields>::SELECT)
        .push(" from activities where organization_id = ")
        .bind(org)
        .push(" and related_entity = ")
        .bind(entity.as_str());
    q.push(" and related_id = ")
        .bind(id)
        .push(" and not is_deleted");
    grants.push_reach(&mut q, activity_scope(), Need::Read);
    if let Some(b) = before {
        q.push(" and id < ").bind(b);
    }
    q.push(" order by id desc").limit(page);
    let mut activities: Vec<Record<Activity>> = s.conn().fetch_all(&q).await?;
    for a in &mut activities {
        redact(&grants, a)?;
    }

    let mut q = Sql::new("select * from events where organization_id = ");
    q.bind(org)
        .push(" and entity = ")
        .bind(entity.as_str())
        .push(" and record_id = ")
        .bind(id);
    if let Some(b) = before {
        q.push(" and id < ").bind(b);
    }
    q.push(" order by id desc").limit(page);
    let mut events: Vec<Event> = s.conn().fetch_all(&q).await?;
    screen_events(&mut s.conn(), org, &grants, &mut events).await?;

    let mut data: Vec<TimelineItem> = activities
        .into_iter()
        .map(|a| TimelineItem::Activity(Box::new(a)))
        .chain(events.into_iter().map(TimelineItem::Event))
        .collect();
    data.sort_by_key(|item| std::cmp::Reverse(item.id()));
    Ok(Page::of(data, limit as usize, |i| i.id().to_string()))
}
