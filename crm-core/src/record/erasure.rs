//! Erasure (GDPR "right to be forgotten"): a record of a person removed for good, with the
//! personal data the event log held about it, leaving only a tombstone.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, json};
use uuid::Uuid;

use super::entity::Entity;
use super::fields::Kind;
use super::query::Deleted;
use super::service::Records;
use crate::entities::EntityKind;
use crate::error::{Error, Result};
use crate::events::{self, Action};
use crate::id::Id;
use crate::storage::{Sql, Tx};
use crate::time::now;

/// What an erasure removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Erasure {
    /// The entity (`"contact"`, `"lead"`).
    pub entity: &'static str,
    /// The erased record's id (kept in the tombstone event: it identifies no one).
    pub id: Uuid,
    /// When.
    pub erased_at: DateTime<Utc>,
    /// Records that linked to it and now link to nothing (each logged as an update).
    pub unlinked: u64,
    /// Activities attached to it, removed with it (they are about the person).
    pub activities_removed: u64,
    /// Event-log entries whose changes were blanked.
    pub events_scrubbed: u64,
}

/// A link column of an entity that may point at the erased record.
struct Referrer {
    table: &'static str,
    entity: &'static str,
    column: &'static str,
    nullable: bool,
}

/// Every link column of every registered entity that points at `target`'s table.
fn referrers(target: &'static str) -> impl Iterator<Item = Referrer> {
    EntityKind::ALL.iter().flat_map(move |k| {
        k.columns().iter().filter_map(move |c| match c.kind {
            Kind::Ref { table, .. } if table == target => Some(Referrer {
                table: k.table(),
                entity: k.name(),
                column: c.name,
                nullable: c.nullable,
            }),
            _ => None,
        })
    })
}

impl<E: Entity> Records<'_, E> {
    /// Erases record `id` (live or trashed) in one transaction: unlinks the records that point
    /// at it (every link column of the registry that targets `E`), removes its activities,
    /// deletes it, blanks the `changes` of every event about it and its activities, and appends
    /// an `erased` event without personal data. Company admins only.
    pub(crate) async fn erase_with(&self, id: Id<E>) -> Result<Erasure> {
        if !self.tenant().context().role().is_admin() {
            return Err(Error::forbidden(
                "admin_only",
                format!("only company admins may erase a {}", E::NAME),
            ));
        }
        let mut s = self.tenant().session().await?;
        let mut tx = s.begin().await?;
        let out = self.erase_in(&mut tx, id).await;
        tx.settle(out).await
    }

    async fn erase_in(&self, tx: &mut Tx<'_>, id: Id<E>) -> Result<Erasure> {
        let ctx = *self.tenant().context();
        let org = ctx.organization_id();
        self.lock_in(tx, id, Deleted::Include, None).await?;
        let at = now();
        let mut erasure = Erasure {
            entity: E::NAME,
            id: id.uuid(),
            erased_at: at,
            unlinked: 0,
            activities_removed: 0,
            events_scrubbed: 0,
        };

        for r in referrers(E::TABLE) {
            if !r.nullable {
                let mut q = Sql::new("select id from ");
                q.push(r.table).push(" where organization_id = ").bind(org);
                q.push(" and ").push(r.column).push(" = ").bind(id);
                q.push(" limit 1");
                if tx.conn().fetch_optional::<(Uuid,)>(&q).await?.is_some() {
                    return Err(Error::conflict(
                        "still_required",
                        format!(
                            "a {} still requires this {} ({}); remove that link first",
                            r.entity,
                            E::NAME,
                            r.column
                        ),
                    ));
                }
                continue;
            }
            let mut q = Sql::new("update ");
            q.push(r.table)
                .push(" set ")
                .push(r.column)
                .push(" = null, version = version + 1, updated_at = ");
            q.bind(at).push(", updated_by = ").bind(ctx.actor().id());
            q.push(" where organization_id = ")
                .bind(org)
                .push(" and ")
                .push(r.column)
                .push(" = ")
                .bind(id);
            q.push(" returning id");
            let ids: Vec<(Uuid,)> = tx.conn().fetch_all(&q).await?;
            let entries = ids
                .iter()
                .map(|(rid,)| {
                    let mut changes = Map::new();
                    changes.insert(r.column.into(), json!({ "before": id, "after": null }));
                    events::Entry {
                        record_id: *rid,
                        action: Action::Updated,
                        changes,
                    }
                })
                .collect();
            events::append_many(&mut tx.conn(), &ctx, r.entity, entries).await?;
            erasure.unlinked += ids.len() as u64;
        }

        let mut q = Sql::new("delete from activities where organization_id = ");
        q.bind(org).push(" and related_entity = ").bind(E::NAME);
        q.push(" and related_id = ").bind(id).push(" returning id");
        let activities: Vec<(Uuid,)> = tx.conn().fetch_all(&q).await?;
        erasure.activities_removed = activities.len() as u64;

        let mut q = Sql::new("delete from ");
        q.push(E::TABLE)
            .push(" where organization_id = ")
            .bind(org)
            .push(" and id = ")
            .bind(id);
        tx.conn().execute(&q).await?;

        // The log keeps that something happened, by whom and when; never what it said.
        let mut q = Sql::new("update events set changes = ");
        q.bind(serde_json::Value::Object(Map::new()))
            .push(" where organization_id = ")
            .bind(org);
        q.push(" and ((entity = ")
            .bind(E::NAME)
            .push(" and record_id = ")
            .bind(id)
            .push(")");
        for (a,) in &activities {
            q.push(" or (entity = 'activity' and record_id = ")
                .bind(*a)
                .push(")");
        }
        q.push(")");
        erasure.events_scrubbed = tx.conn().execute(&q).await?;

        events::append(
            &mut tx.conn(),
            &ctx,
            E::NAME,
            id.uuid(),
            Action::Erased,
            Map::new(),
        )
        .await?;
        Ok(erasure)
    }
}
