//! Redirects of merged records: a merged record's id answers [`Error::Moved`] with its survivor
//! (HTTP 308), and the survivor's history includes the merged records' events.
//!
//! A redirect always names a record that was not merged itself: merging a survivor into another
//! record re-points the redirects to it, so chains collapse. Purging a survivor drops the
//! redirects to it; erasure erases the records merged into the erased one (the same person) and
//! drops every redirect from or to them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::organizations::OrganizationId;
use crate::storage::{Arg, Conn, Sql};

/// The record `id` of `entity` was merged into, if it was.
pub(crate) async fn survivor(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    entity: &'static str,
    id: Uuid,
) -> Result<Option<Uuid>> {
    let mut q = Sql::new("select survivor_id from record_redirects where organization_id = ");
    q.bind(org).push(" and entity = ").bind(entity);
    q.push(" and id = ").bind(id);
    Ok(conn.fetch_optional::<(Uuid,)>(&q).await?.map(|(s,)| s))
}

/// What a read of the missing record `id` answers: [`Error::Moved`] when it was merged,
/// [`Error::NotFound`] otherwise.
pub(crate) async fn missing(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    entity: &'static str,
    id: Uuid,
) -> Error {
    match survivor(conn, org, entity, id).await {
        Ok(Some(to)) => Error::Moved { entity, id, to },
        Ok(None) => Error::not_found(entity, id),
        Err(e) => e,
    }
}

/// The records merged into `survivor` (directly or through a collapsed chain).
pub(crate) async fn absorbed_into(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    entity: &'static str,
    survivor: Uuid,
) -> Result<Vec<Uuid>> {
    let mut q = Sql::new("select id from record_redirects where organization_id = ");
    q.bind(org).push(" and entity = ").bind(entity);
    q.push(" and survivor_id = ")
        .bind(survivor)
        .push(" order by id");
    let ids: Vec<(Uuid,)> = conn.fetch_all(&q).await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Redirects `absorbed` (and whatever was merged into them before) to `survivor`.
pub(crate) async fn add(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    entity: &'static str,
    absorbed: &[Uuid],
    survivor: Uuid,
    at: DateTime<Utc>,
) -> Result<()> {
    let list = || absorbed.iter().map(|id| Arg::Uuid(Some(*id)));
    let mut q = Sql::new("update record_redirects set survivor_id = ");
    q.bind(survivor).push(" where organization_id = ").bind(org);
    q.push(" and entity = ").bind(entity);
    q.push(" and survivor_id in (").bind_list(list()).push(")");
    conn.execute(&q).await?;
    for id in absorbed {
        let mut q = Sql::new(
            "insert into record_redirects (organization_id, entity, id, survivor_id, merged_at) values (",
        );
        q.bind(org).push(", ").bind(entity).push(", ").bind(*id);
        q.push(", ").bind(survivor).push(", ").bind(at).push(")");
        conn.execute(&q).await?;
    }
    Ok(())
}

/// Drops the redirects to `survivor` (purged: the merged ids now answer not found).
pub(crate) async fn forget(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    entity: &'static str,
    survivor: Uuid,
) -> Result<()> {
    let mut q = Sql::new("delete from record_redirects where organization_id = ");
    q.bind(org).push(" and entity = ").bind(entity);
    q.push(" and survivor_id = ").bind(survivor);
    conn.execute(&q).await?;
    Ok(())
}

/// Drops every redirect from or to `id` (erased).
pub(crate) async fn forget_all(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    entity: &'static str,
    id: Uuid,
) -> Result<()> {
    let mut q = Sql::new("delete from record_redirects where organization_id = ");
    q.bind(org).push(" and entity = ").bind(entity);
    q.push(" and (id = ")
        .bind(id)
        .push(" or survivor_id = ")
        .bind(id)
        .push(")");
    conn.execute(&q).await?;
    Ok(())
}
