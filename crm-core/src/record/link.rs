//! Links between records: a table other records may point at ([`Referable`]), and the column
//! kind of an [`Id`] that points at one.

use serde_json::Value;
use uuid::Uuid;

use super::fields::{Column, FieldType, Kind};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::organizations::OrganizationId;
use crate::storage::{Arg, Conn, Sql};

/// A table other records may point at (`account_id`, `owner_id`).
pub trait Referable {
    /// Its table.
    const TABLE: &'static str;
    /// Its singular name, for the `NotFound` a dangling link answers.
    const NAME: &'static str;
    /// Whether it has `is_deleted` (a link to a soft-deleted record is refused).
    const SOFT_DELETE: bool;
}

impl<E: Referable> FieldType for Id<E> {
    const KIND: Kind = Kind::Ref {
        table: E::TABLE,
        entity: E::NAME,
        soft_delete: E::SOFT_DELETE,
    };
    fn value(&self) -> super::fields::FieldValue<'_> {
        super::fields::FieldValue::Uuid(self.uuid())
    }
}

/// Checks that every link names a live record of `org`. Another organization's id is
/// indistinguishable from a missing one.
pub(super) async fn check_links(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    links: &[(Kind, Uuid)],
) -> Result<()> {
    let missing = missing_links(conn, org, links).await?;
    match links.iter().find(|(_, id)| missing.contains(id)) {
        Some((kind, id)) => match kind {
            Kind::Ref { entity, .. } => Err(Error::NotFound {
                entity,
                id: Some(*id),
            }),
            _ => Err(Error::Internal("a link column is not a reference".into())),
        },
        None => Ok(()),
    }
}

/// The linked ids that name no live record of `org`, one query per target table (and per
/// thousand ids).
pub(super) async fn missing_links(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    links: &[(Kind, Uuid)],
) -> Result<std::collections::HashSet<Uuid>> {
    let mut by_target: Vec<(Kind, Vec<Uuid>)> = Vec::new();
    for (kind, target) in links {
        match by_target.iter_mut().find(|(k, _)| k == kind) {
            Some((_, ids)) => ids.push(*target),
            None => by_target.push((*kind, vec![*target])),
        }
    }
    let mut missing = std::collections::HashSet::new();
    for (kind, mut ids) in by_target {
        let Kind::Ref {
            table, soft_delete, ..
        } = kind
        else {
            continue;
        };
        ids.sort_unstable();
        ids.dedup();
        for chunk in ids.chunks(1000) {
            let mut q = Sql::new("select id from ");
            q.push(table).push(" where organization_id = ").bind(org);
            q.push(" and id in (")
                .bind_list(chunk.iter().map(|id| Arg::Uuid(Some(*id))))
                .push(")");
            if soft_delete {
                q.push(" and not is_deleted");
            }
            let found: Vec<(Uuid,)> = conn.fetch_all(&q).await?;
            for id in chunk {
                if !found.iter().any(|(f,)| f == id) {
                    missing.insert(*id);
                }
            }
        }
    }
    Ok(missing)
}

pub(super) fn link_of(c: &Column, v: &Value) -> Option<(Kind, Uuid)> {
    match (c.kind, v) {
        (Kind::Ref { .. }, Value::String(s)) => s.parse().ok().map(|id| (c.kind, id)),
        _ => None,
    }
}
