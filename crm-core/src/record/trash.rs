//! The trash: soft delete and restore, and purging for good (one record, or what has been in
//! the trash long enough).

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use serde_json::{Map, json};

use super::entity::Entity;
use super::keys;
use super::query::Deleted;
use super::redirect;
use super::row::Record;
use super::service::Records;
use super::update::Change;
use crate::access::grants::forget_shares;
use crate::access::roles::require_admin;
use crate::access::rules::Need;
use crate::entities::{EntityKind, EntityVisitor};
use crate::error::{Error, Result, ResultExt as _};
use crate::events::{self, Action};
use crate::id::Id;
use crate::storage::{Arg, Sql};
use crate::tenant::Tenant;
use crate::time::now;

/// What [`Records::purge_trashed_before`] did (or, in a dry run, would do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    /// Records removed for good (or that would be).
    pub purged: u64,
    /// Records kept because others still link to them.
    pub kept_linked: u64,
}

impl<E: Entity> Records<'_, E> {
    /// Moves the live record `id` to the trash. Users may trash records they created or own;
    /// company admins any record.
    ///
    /// # Errors
    /// [`Error::Forbidden`] (`not_owner`) for a user who neither created nor owns it;
    /// [`Error::Conflict`] when the entity keeps the record ([`Entity::may_trash`]: a sent
    /// invoice is `not_draft`).
    pub async fn delete(&self, id: Id<E>) -> Result<Record<E>> {
        self.trash(id, None, true).await
    }

    /// Like [`Records::delete`], but only if the record is still at `version`.
    pub async fn delete_if_version(&self, id: Id<E>, version: i64) -> Result<Record<E>> {
        self.trash(id, Some(version), true).await
    }

    /// Takes record `id` out of the trash.
    ///
    /// # Errors
    /// [`Error::Conflict`] when it is not in the trash.
    pub async fn restore(&self, id: Id<E>) -> Result<Record<E>> {
        self.trash(id, None, false).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(entity = E::NAME, org = %self.org(), delete))]
    async fn trash(&self, id: Id<E>, expected: Option<i64>, delete: bool) -> Result<Record<E>> {
        self.tenant
            .retrying(|| async move {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = async {
                    let scope = if delete {
                        Deleted::Exclude
                    } else {
                        Deleted::Include
                    };
                    let current = self
                        .lock_in(&mut tx, id, scope, expected, Need::Delete)
                        .await?;
                    if !delete && !current.is_deleted {
                        return Err(Error::conflict(
                            "not_deleted",
                            format!("{} {id} is not deleted", E::NAME),
                        ));
                    }
                    if !delete
                        && let Some(to) =
                            redirect::survivor(&mut tx.conn(), self.org(), E::NAME, id.uuid())
                                .await?
                    {
                        return Err(Error::conflict(
                            "merged",
                            format!(
                                "{} {id} was merged into {to} and cannot be restored",
                                E::NAME
                            ),
                        ));
                    }
                    if delete {
                        current.fields.may_trash()?;
                    }
                    let at = now();
                    let (action, deleted_at, by) = if delete {
                        (Action::Deleted, Some(at), self.ctx().actor().id())
                    } else {
                        (Action::Restored, None, None)
                    };
                    let mut changes = Map::new();
                    changes.insert(
                        "is_deleted".into(),
                        json!({ "before": !delete, "after": delete }),
                    );
                    let change = Change {
                        action,
                        at,
                        sets: vec![
                            ("is_deleted", Arg::Bool(Some(delete))),
                            ("deleted_at", Arg::Time(deleted_at)),
                            ("deleted_by", Arg::Uuid(by)),
                        ],
                        links: Vec::new(),
                        changes,
                    };
                    self.write_in(&mut tx, &current, change).await
                }
                .await;
                tx.settle(out).await
            })
            .await
    }

    /// Removes record `id` for good (live or in the trash). Company admins only. The event log
    /// keeps a `purged` entry.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for plain users; [`Error::Conflict`] while other records still link
    /// to it, or when the entity keeps the record ([`Entity::may_trash`]).
    pub async fn purge(&self, id: Id<E>) -> Result<()> {
        self.purge_at(id, None).await
    }

    /// Like [`Records::purge`], but only if the record is still at `version`, checked in the
    /// purge's own transaction (under the row lock).
    pub async fn purge_if_version(&self, id: Id<E>, version: i64) -> Result<()> {
        self.purge_at(id, Some(version)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(entity = E::NAME, org = %self.org()))]
    async fn purge_at(&self, id: Id<E>, version: Option<i64>) -> Result<()> {
        require_admin(self.ctx(), format_args!("permanently delete a {}", E::NAME))?;
        self.tenant
            .retrying(|| async move {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = async {
                    let current = self.lock_in(&mut tx, id, Deleted::Include, version, Need::Delete).await?;
                    current.fields.may_trash()?;
                    let mut q = Sql::new("delete from ");
                    q.push(E::TABLE)
                        .push(" where organization_id = ")
                        .bind(self.org());
                    q.push(" and id = ").bind(id);
                    tx.conn().execute(&q).await.on_foreign_key(|| {
                        format!(
                            "{} {id} is still linked from other records; unlink or purge those first",
                            E::NAME
                        )
                    })?;
                    keys::forget(&mut tx.conn(), self.org(), E::NAME, &[id.uuid()]).await?;
                    redirect::forget(&mut tx.conn(), self.org(), E::NAME, id.uuid()).await?;
                    forget_shares(&mut tx.conn(), self.org(), E::NAME, &[id.uuid()]).await?;
                    crate::custom_fields::refresh_for(&mut tx, self.tenant, E::KIND, || {
                        Ok(vec![super::values::to_object(&current.fields)?])
                    })
                    .await?;
                    events::append(
                        &mut tx.conn(),
                        self.ctx(),
                        E::NAME,
                        id.uuid(),
                        Action::Purged,
                        Map::new(),
                    )
                    .await
                }
                .await;
                tx.settle(out).await
            })
            .await
    }

    /// Permanently removes the records trashed before `cutoff` (retention), one transaction and
    /// one `purged` event each; records still linked from others are kept and counted. With
    /// `dry_run`, only counts. Company admins only.
    #[tracing::instrument(level = "debug", skip_all, fields(entity = E::NAME, org = %self.org()))]
    pub async fn purge_trashed_before(
        &self,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<PurgeReport> {
        require_admin(self.ctx(), format_args!("purge {} records", E::NAME))?;
        let mut report = PurgeReport::default();
        let mut after: Option<Id<E>> = None;
        loop {
            let mut q = Sql::new("select id from ");
            q.push(E::TABLE)
                .push(" where organization_id = ")
                .bind(self.org());
            q.push(" and is_deleted and deleted_at < ").bind(cutoff);
            if let Some(after) = after {
                q.push(" and id > ").bind(after);
            }
            q.push(" order by id limit 500");
            let ids: Vec<(Id<E>,)> = self.tenant.session().await?.conn().fetch_all(&q).await?;
            let Some(last) = ids.last() else {
                return Ok(report);
            };
            after = Some(last.0);
            for (id,) in ids {
                if dry_run {
                    report.purged += 1;
                    continue;
                }
                match self.purge(id).await {
                    Ok(()) => report.purged += 1,
                    Err(Error::Conflict(_)) => report.kept_linked += 1,
                    // Restored or purged meanwhile.
                    Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// Purges what of the visited kind was trashed before `cutoff` (or counts it, on a dry run).
struct PurgeKind<'t> {
    tenant: &'t Tenant,
    cutoff: DateTime<Utc>,
    dry_run: bool,
}

impl<'t> EntityVisitor for PurgeKind<'t> {
    type Output = Pin<Box<dyn Future<Output = Result<PurgeReport>> + Send + 't>>;

    fn visit<E: Entity>(self) -> Self::Output {
        Box::pin(async move {
            self.tenant
                .records::<E>()
                .purge_trashed_before(self.cutoff, self.dry_run)
                .await
        })
    }
}

impl Tenant {
    /// Trash retention for every kind of record: [`Records::purge_trashed_before`] for each,
    /// records that others link to last (once their referrers are gone). Answers each kind's
    /// report, in that order. Company admins (and the system) only.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for anyone else; the first failing purge's error.
    pub async fn purge_trash(
        &self,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Vec<(EntityKind, PurgeReport)>> {
        let mut reports = Vec::new();
        for kind in EntityKind::referrers_first() {
            let purge = PurgeKind {
                tenant: self,
                cutoff,
                dry_run,
            };
            reports.push((kind, kind.visit(purge).await?));
        }
        Ok(reports)
    }
}
