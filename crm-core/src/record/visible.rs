//! Which records of any kind a caller may read, for the exits that name records by kind and id
//! rather than through [`super::Records`]: the change feed, timelines and webhook payloads.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::compile::reach_scope;
use super::projection::redact_object;
use crate::access::grants::Grants;
use crate::access::rules::Need;
use crate::entities::EntityKind;
use crate::error::Result;
use crate::events::Event;
use crate::organizations::OrganizationId;
use crate::storage::{Conn, Sql};

/// The reach scope of the activities table, read by its own name.
pub(crate) fn activity_scope() -> crate::access::grants::ReachScope {
    super::service::reach_scope::<crate::entities::Activity>()
}

/// The ids among `ids` of records of `kind` the caller reaches for reading (trashed ones
/// included: a tombstone is still theirs to know of). One statement.
pub(crate) async fn readable(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    grants: &Grants,
    kind: EntityKind,
    ids: &[Uuid],
) -> Result<HashSet<Uuid>> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let table = kind.table();
    let mut q = Sql::new("select id from ");
    q.push(table)
        .push(" where organization_id = ")
        .bind(org)
        .push(" and id in (")
        .bind_list(ids.iter().map(|id| (*id).into()))
        .push(")");
    grants.push_reach_among(
        &mut q,
        reach_scope(table, table, kind.name(), kind.columns()),
        Need::Read,
        Some(ids),
    );
    let rows: Vec<(Uuid,)> = conn.fetch_all(&q).await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// `events` as the caller may see them: an event of a record they may not read keeps its
/// place (id, entity, record, action, time) but loses its values and actor, a tombstone; the
/// fields hidden from them are removed from every other event's `changes`. Events of what is
/// not a record (users, settings) pass as they are: who reads those is checked by the caller.
pub(crate) async fn screen_events<'e>(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    grants: &Grants,
    events: impl IntoIterator<Item = &'e mut Event>,
) -> Result<()> {
    // The common reader (an admin, a key without a set): nothing to look up or remove.
    if grants.sees_everything() {
        return Ok(());
    }
    let mut by_kind: HashMap<EntityKind, Vec<&'e mut Event>> = HashMap::new();
    for event in events {
        if let Ok(kind) = event.entity.parse::<EntityKind>() {
            by_kind.entry(kind).or_default().push(event);
        }
    }
    for (kind, events) in by_kind {
        let table = kind.table();
        let hides = grants.hides_fields_of(table);
        let reads_all = grants.reach(table, Need::Read) == crate::access::rules::Reach::All;
        if reads_all && !hides {
            continue;
        }
        let seen = if reads_all {
            None
        } else {
            let ids: Vec<Uuid> = events.iter().map(|e| e.record_id).collect();
            Some(readable(conn, org, grants, kind, &ids).await?)
        };
        for event in events {
            if seen.as_ref().is_some_and(|s| !s.contains(&event.record_id)) {
                event.changes.clear();
                event.actor_id = None;
                event.request_id = None;
            } else if hides {
                redact_object(grants, table, &mut event.changes);
            }
        }
    }
    Ok(())
}
