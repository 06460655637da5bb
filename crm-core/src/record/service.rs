//! [`Records`]: the CRUD, trash and list service every entity gets.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::custom_fields::CustomFields;
use super::entity::Entity;
use super::fields::{Column, Kind};
use super::list::{self, Deleted, ListQuery, Page};
use super::row::Record;
use crate::context::TenantContext;
use crate::error::{Error, Result, ResultExt as _};
use crate::events::{self, Action};
use crate::id::Id;
use crate::organizations::OrganizationId;
use crate::storage::{Arg, Backend, Conn, Sql, Tx};
use crate::tenant::Tenant;
use crate::time::now;
use crate::validation::Validator;

/// The records of entity `E` in one organization: `tenant.accounts()`, `tenant.contacts()`…
///
/// Every method is confined to the tenant's organization: another organization's id answers
/// [`Error::NotFound`], exactly like an id that does not exist. Every write bumps the record's
/// `version`, stamps the audit columns from the context's actor and appends an event in the same
/// transaction.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use crm_core::{AccountPatch, Crm, NewAccount, NewOrganization, TenantContext};
/// # let crm = Crm::connect("sqlite::memory:").await?;
/// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
/// let t = crm.tenant(&TenantContext::system(org.id));
/// let a = t.accounts().create(NewAccount { name: "Globex".into(), ..Default::default() }).await?;
/// let patch = AccountPatch { industry: Some(Some("Energy".into())), ..Default::default() };
/// let a = t.accounts().update_if_version(a.id, a.version, patch).await?;
/// assert_eq!((a.industry.as_deref(), a.version), (Some("Energy"), 2));
/// t.accounts().delete(a.id).await?;
/// assert!(t.accounts().get(a.id).await.is_err());
/// t.accounts().restore(a.id).await?;
/// # Ok::<_, crm_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Records<'t, E> {
    tenant: &'t Tenant,
    entity: PhantomData<fn() -> E>,
}

impl<E> Clone for Records<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for Records<'_, E> {}

/// What a write changes, computed from the current record.
struct Change {
    action: Action,
    sets: Vec<(&'static str, Arg)>,
    /// Links to check (target must exist, live, in the same organization).
    links: Vec<(&'static Column, Uuid)>,
    changes: Map<String, Value>,
}

impl<'t, E: Entity> Records<'t, E> {
    pub(crate) fn new(tenant: &'t Tenant) -> Self {
        Self {
            tenant,
            entity: PhantomData,
        }
    }

    fn ctx(&self) -> &TenantContext {
        self.tenant.context()
    }

    fn org(&self) -> OrganizationId {
        self.ctx().organization_id()
    }

    /// Creates a record.
    ///
    /// # Errors
    /// [`Error::Validation`] for invalid fields or custom fields; [`Error::NotFound`] when a
    /// link (`account_id`, `owner_id`…) names no live record of this organization.
    #[tracing::instrument(skip_all, fields(entity = E::NAME, org = %self.org()))]
    pub async fn create(&self, new: E::New) -> Result<Record<E>> {
        let mut input = to_object(&new)?;
        let custom = CustomFields::take_new(&mut input)?;
        let entity: E = from_object(input)?;
        validate(&entity)?;
        let values = to_object(&entity)?;

        let mut changes = Map::new();
        let mut links = Vec::new();
        for c in E::COLUMNS {
            let v = values.get(c.name).unwrap_or(&Value::Null);
            if !v.is_null() {
                changes.insert(c.name.into(), json!({ "after": v }));
                links.extend(link(c, v));
            }
        }
        for (k, v) in &custom {
            changes.insert(format!("custom_fields.{k}"), json!({ "after": v }));
        }

        let id = Id::<E>::new();
        let at = now();
        let actor = self.ctx().actor().id();
        let mut q = Sql::new("insert into ");
        q.push(E::TABLE).push(
            " (organization_id, id, created_at, updated_at, created_by, updated_by, version, is_deleted, custom_fields",
        );
        for c in E::COLUMNS {
            q.push(", ").push(c.name);
        }
        q.push(") values (").bind(self.org()).push(", ").bind(id);
        q.push(", ").bind(at).push(", ").bind(at);
        q.push(", ").bind(actor).push(", ").bind(actor);
        q.push(", 1, false, ").bind(Value::Object(custom));
        for c in E::COLUMNS {
            q.push(", ").bind(column_arg(c, &values)?);
        }
        q.push(") returning *");

        let mut s = self.tenant.session().await?;
        let mut tx = s.begin().await?;
        let out = async {
            check_links(&mut tx.conn(), self.org(), &links).await?;
            let record: Record<E> = tx.conn().fetch_one(&q).await?;
            events::append(
                &mut tx.conn(),
                self.ctx(),
                E::NAME,
                id.uuid(),
                Action::Created,
                changes,
            )
            .await?;
            Ok(record)
        }
        .await;
        tx.settle(out).await
    }

    /// The live record with `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when it does not exist in this organization or is in the trash.
    #[tracing::instrument(skip_all, fields(entity = E::NAME, org = %self.org()))]
    pub async fn get(&self, id: Id<E>) -> Result<Record<E>> {
        self.find(id, Deleted::Exclude).await
    }

    /// The record with `id`, even if it is in the trash.
    #[tracing::instrument(skip_all, fields(entity = E::NAME, org = %self.org()))]
    pub async fn get_including_deleted(&self, id: Id<E>) -> Result<Record<E>> {
        self.find(id, Deleted::Include).await
    }

    async fn find(&self, id: Id<E>, deleted: Deleted) -> Result<Record<E>> {
        let mut s = self.tenant.session().await?;
        let q = select_one::<E>(self.org(), id, deleted, false, s.conn().backend());
        s.conn()
            .fetch_optional(&q)
            .await?
            .ok_or(Error::not_found(E::NAME, id))
    }

    /// One page of records matching `query`.
    ///
    /// # Errors
    /// [`Error::Validation`] for unknown fields, unsortable fields, mistyped values, a limit out
    /// of range, or a cursor from another list.
    #[tracing::instrument(skip_all, fields(entity = E::NAME, org = %self.org()))]
    pub async fn list(&self, query: &ListQuery) -> Result<Page<Record<E>>> {
        let mut s = self.tenant.session().await?;
        let plan = list::plan::<E>(query, self.org(), s.conn().backend())?;
        let mut data: Vec<Record<E>> = s.conn().fetch_all(&plan.sql).await?;
        let next_cursor = if data.len() > plan.limit {
            data.truncate(plan.limit);
            match data.last() {
                Some(last) => Some(plan.cursor_after(&to_object(last)?, last.id.uuid())),
                None => None,
            }
        } else {
            None
        };
        Ok(Page { data, next_cursor })
    }

    /// Applies `patch` to the live record `id` (last writer wins).
    ///
    /// Absent fields are kept; custom fields are merged key by key (`null` removes a key). A
    /// patch that changes nothing writes nothing and returns the record as it is.
    pub async fn update(&self, id: Id<E>, patch: E::Patch) -> Result<Record<E>> {
        self.update_inner(id, None, patch).await
    }

    /// Like [`Records::update`], but only if the record is still at `version`.
    ///
    /// # Errors
    /// [`Error::VersionMismatch`] when someone else wrote first.
    pub async fn update_if_version(
        &self,
        id: Id<E>,
        version: i64,
        patch: E::Patch,
    ) -> Result<Record<E>> {
        self.update_inner(id, Some(version), patch).await
    }

    #[tracing::instrument(skip_all, fields(entity = E::NAME, org = %self.org()))]
    async fn update_inner(
        &self,
        id: Id<E>,
        expected: Option<i64>,
        patch: E::Patch,
    ) -> Result<Record<E>> {
        let mut patch = to_object(&patch)?;
        let custom_patch = CustomFields::take_patch(&mut patch)?;
        self.mutate(id, Deleted::Exclude, expected, move |current| {
            let before = to_object(&current.fields)?;
            let mut merged = before.clone();
            merged.extend(patch);
            let entity: E = from_object(merged)?;
            validate(&entity)?;
            let after = to_object(&entity)?;
            let custom = CustomFields::merge(&current.custom_fields, custom_patch)?;

            let mut change = Change {
                action: Action::Updated,
                sets: Vec::new(),
                links: Vec::new(),
                changes: Map::new(),
            };
            for c in E::COLUMNS {
                let (b, a) = (field(&before, c), field(&after, c));
                if b != a {
                    change.sets.push((c.name, column_arg(c, &after)?));
                    change.links.extend(link(c, a));
                    change
                        .changes
                        .insert(c.name.into(), json!({ "before": b, "after": a }));
                }
            }
            if custom != current.custom_fields {
                let keys = current.custom_fields.keys().chain(custom.keys());
                for k in keys {
                    let (b, a) = (current.custom_fields.get(k), custom.get(k));
                    if b != a {
                        change.changes.insert(
                            format!("custom_fields.{k}"),
                            json!({ "before": b, "after": a }),
                        );
                    }
                }
                change
                    .sets
                    .push(("custom_fields", Arg::Json(Some(Value::Object(custom)))));
            }
            Ok((!change.sets.is_empty()).then_some(change))
        })
        .await
    }

    /// Moves the live record `id` to the trash. Users may trash records they created or own;
    /// company admins any record.
    pub async fn delete(&self, id: Id<E>) -> Result<Record<E>> {
        self.delete_inner(id, None).await
    }

    /// Like [`Records::delete`], but only if the record is still at `version`.
    pub async fn delete_if_version(&self, id: Id<E>, version: i64) -> Result<Record<E>> {
        self.delete_inner(id, Some(version)).await
    }

    #[tracing::instrument(skip_all, fields(entity = E::NAME, org = %self.org()))]
    async fn delete_inner(&self, id: Id<E>, expected: Option<i64>) -> Result<Record<E>> {
        let ctx = *self.ctx();
        self.mutate(id, Deleted::Exclude, expected, move |current| {
            may_trash(&ctx, current)?;
            let at = now();
            Ok(Some(Change {
                action: Action::Deleted,
                sets: vec![
                    ("is_deleted", Arg::Bool(Some(true))),
                    ("deleted_at", Arg::Time(Some(at))),
                    ("deleted_by", Arg::Uuid(ctx.actor().id())),
                ],
                links: Vec::new(),
                changes: trash_change(false, true),
            }))
        })
        .await
    }

    /// Takes record `id` out of the trash.
    ///
    /// # Errors
    /// [`Error::Conflict`] when it is not in the trash.
    #[tracing::instrument(skip_all, fields(entity = E::NAME, org = %self.org()))]
    pub async fn restore(&self, id: Id<E>) -> Result<Record<E>> {
        let ctx = *self.ctx();
        self.mutate(id, Deleted::Include, None, move |current| {
            if !current.is_deleted {
                return Err(Error::Conflict(format!("{} {id} is not deleted", E::NAME)));
            }
            may_trash(&ctx, current)?;
            Ok(Some(Change {
                action: Action::Restored,
                sets: vec![
                    ("is_deleted", Arg::Bool(Some(false))),
                    ("deleted_at", Arg::Time(None)),
                    ("deleted_by", Arg::Uuid(None)),
                ],
                links: Vec::new(),
                changes: trash_change(true, false),
            }))
        })
        .await
    }

    /// Removes record `id` for good (live or in the trash). Company admins only. The event log
    /// keeps a `purged` entry.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for plain users; [`Error::Conflict`] while other records still link
    /// to it.
    #[tracing::instrument(skip_all, fields(entity = E::NAME, org = %self.org()))]
    pub async fn purge(&self, id: Id<E>) -> Result<()> {
        if !self.ctx().role().is_admin() {
            return Err(Error::Forbidden(format!(
                "only company admins may permanently delete a {}",
                E::NAME
            )));
        }
        let mut s = self.tenant.session().await?;
        let mut tx = s.begin().await?;
        let out = async {
            let backend = tx.conn().backend();
            let current: Option<Record<E>> = tx
                .conn()
                .fetch_optional(&select_one::<E>(
                    self.org(),
                    id,
                    Deleted::Include,
                    true,
                    backend,
                ))
                .await?;
            if current.is_none() {
                return Err(Error::not_found(E::NAME, id));
            }
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
    }

    /// The shared write path: lock the current row, check the version, compute the change,
    /// check links, update, log, commit.
    async fn mutate(
        &self,
        id: Id<E>,
        deleted: Deleted,
        expected: Option<i64>,
        compute: impl FnOnce(&Record<E>) -> Result<Option<Change>>,
    ) -> Result<Record<E>> {
        let mut s = self.tenant.session().await?;
        let mut tx = s.begin().await?;
        let out = self
            .mutate_in(&mut tx, id, deleted, expected, compute)
            .await;
        tx.settle(out).await
    }

    async fn mutate_in(
        &self,
        tx: &mut Tx<'_>,
        id: Id<E>,
        deleted: Deleted,
        expected: Option<i64>,
        compute: impl FnOnce(&Record<E>) -> Result<Option<Change>>,
    ) -> Result<Record<E>> {
        let backend = tx.conn().backend();
        let current: Record<E> = tx
            .conn()
            .fetch_optional(&select_one::<E>(self.org(), id, deleted, true, backend))
            .await?
            .ok_or(Error::not_found(E::NAME, id))?;
        if let Some(expected) = expected.filter(|v| *v != current.version) {
            return Err(Error::VersionMismatch {
                expected,
                actual: current.version,
            });
        }
        let Some(change) = compute(&current)? else {
            return Ok(current);
        };
        check_links(&mut tx.conn(), self.org(), &change.links).await?;

        let mut q = Sql::new("update ");
        q.push(E::TABLE)
            .push(" set version = version + 1, updated_at = ")
            .bind(now());
        q.push(", updated_by = ").bind(self.ctx().actor().id());
        for (column, value) in change.sets {
            q.push(", ").push(column).push(" = ").bind(value);
        }
        q.push(" where organization_id = ").bind(self.org());
        q.push(" and id = ").bind(id);
        q.push(" and version = ").bind(current.version);
        q.push(" returning *");
        let updated: Record<E> =
            tx.conn()
                .fetch_optional(&q)
                .await?
                .ok_or(Error::VersionMismatch {
                    expected: current.version,
                    actual: current.version + 1,
                })?;
        events::append(
            &mut tx.conn(),
            self.ctx(),
            E::NAME,
            id.uuid(),
            change.action,
            change.changes,
        )
        .await?;
        Ok(updated)
    }
}

/// `select * from T where organization_id = $1 and id = $2 …`, locked for update on PostgreSQL
/// when `lock` (SQLite's `BEGIN IMMEDIATE` already holds the write lock).
fn select_one<E: Entity>(
    org: OrganizationId,
    id: Id<E>,
    deleted: Deleted,
    lock: bool,
    backend: Backend,
) -> Sql {
    let mut q = Sql::new("select * from ");
    q.push(E::TABLE).push(" where organization_id = ").bind(org);
    q.push(" and id = ").bind(id);
    match deleted {
        Deleted::Exclude => q.push(" and not is_deleted"),
        Deleted::Include => &mut q,
        Deleted::Only => q.push(" and is_deleted"),
    };
    if lock && backend == Backend::Postgres {
        q.push(" for update");
    }
    q
}

/// Checks that every link names a live record of `org`. Another organization's id is
/// indistinguishable from a missing one.
async fn check_links(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    links: &[(&'static Column, Uuid)],
) -> Result<()> {
    for (column, target) in links {
        let Kind::Ref {
            table,
            entity,
            soft_delete,
        } = column.kind
        else {
            continue;
        };
        let mut q = Sql::new("select id from ");
        q.push(table).push(" where organization_id = ").bind(org);
        q.push(" and id = ").bind(*target);
        if soft_delete {
            q.push(" and not is_deleted");
        }
        let found: Option<(Uuid,)> = conn.fetch_optional(&q).await?;
        if found.is_none() {
            return Err(Error::NotFound {
                entity,
                id: Some(*target),
            });
        }
    }
    Ok(())
}

fn may_trash<E: Entity>(ctx: &TenantContext, current: &Record<E>) -> Result<()> {
    let actor = ctx.actor().id();
    let own = actor.is_some()
        && (current.created_by == actor || current.fields.owner().map(Id::uuid) == actor);
    if ctx.role().is_admin() || own {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "users may only delete or restore {} records they created or own",
            E::NAME
        )))
    }
}

fn trash_change(before: bool, after: bool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "is_deleted".into(),
        json!({ "before": before, "after": after }),
    );
    m
}

fn field<'a>(values: &'a Map<String, Value>, c: &Column) -> &'a Value {
    values.get(c.name).unwrap_or(&Value::Null)
}

fn link(c: &'static Column, v: &Value) -> Option<(&'static Column, Uuid)> {
    match (c.kind, v) {
        (Kind::Ref { .. }, Value::String(s)) => s.parse().ok().map(|id| (c, id)),
        _ => None,
    }
}

fn column_arg(c: &Column, values: &Map<String, Value>) -> Result<Arg> {
    c.kind.to_arg(field(values, c)).ok_or_else(|| {
        Error::Internal(format!(
            "field `{}` does not serialize as {}",
            c.name,
            c.kind.expected()
        ))
    })
}

fn validate<E: Entity>(entity: &E) -> Result<()> {
    let mut v = Validator::new();
    entity.validate(&mut v);
    v.finish()
}

pub(crate) fn to_object<T: Serialize>(value: &T) -> Result<Map<String, Value>> {
    match serde_json::to_value(value) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::Internal(
            "a record did not serialize as an object".into(),
        )),
        Err(e) => Err(Error::Internal(format!("a record did not serialize: {e}"))),
    }
}

fn from_object<T: DeserializeOwned>(m: Map<String, Value>) -> Result<T> {
    serde_json::from_value(Value::Object(m))
        .map_err(|e| Error::Internal(format!("a record did not deserialize: {e}")))
}
