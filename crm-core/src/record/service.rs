//! [`Records`]: the CRUD, trash and list service every entity gets.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::checks::validate;
use super::compile;
use super::entity::{Entity, Operation, WriteContext};
use super::fields::{Column, Kind};
use super::page::Page;
use super::query::{Deleted, ListQuery};
use super::row::Record;
use crate::context::TenantContext;
use crate::custom_fields::CustomValues;
use crate::custom_fields::{self, Definitions};
use crate::error::{Error, FieldError, Result, ResultExt as _};
use crate::events::{self, Action};
use crate::id::Id;
use crate::organizations::OrganizationId;
use crate::storage::{Arg, Backend, Conn, Sql, Tx};
use crate::tenant::Tenant;
use crate::time::now;

impl Tenant {
    /// The records of any entity (the registry also gives each its own accessor, e.g.
    /// [`Tenant::accounts`]).
    pub fn records<E: Entity>(&self) -> Records<'_, E> {
        Records::new(self)
    }
}

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

/// What [`Records::purge_trashed_before`] did (or, in a dry run, would do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    /// Records removed for good (or that would be).
    pub purged: u64,
    /// Records kept because others still link to them.
    pub kept_linked: u64,
}

/// A new record, checked and ready to insert.
struct Prepared {
    id: Uuid,
    values: Map<String, Value>,
    /// Records it links to (columns and the entity's own links).
    links: Vec<(Kind, Uuid)>,
    custom: Map<String, Value>,
    changes: Map<String, Value>,
    action: Action,
}

/// What a write changes, computed from the current record.
struct Change {
    action: Action,
    sets: Vec<(&'static str, Arg)>,
    /// Links to check (target must exist, live, in the same organization).
    links: Vec<(Kind, Uuid)>,
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

    /// The tenant these records belong to.
    pub(crate) fn tenant(&self) -> &'t Tenant {
        self.tenant
    }

    fn org(&self) -> OrganizationId {
        self.ctx().organization_id()
    }

    /// Creates a record.
    ///
    /// # Errors
    /// [`Error::Validation`] for invalid fields or custom fields (every problem at once);
    /// [`Error::NotFound`] when a link (`account_id`, `owner_id`…) names no live record of this
    /// organization.
    #[tracing::instrument(skip_all, fields(entity = E::NAME, org = %self.org()))]
    pub async fn create(&self, new: E::New) -> Result<Record<E>> {
        let mut s = self.tenant.session().await?;
        let mut tx = s.begin().await?;
        let out = self.create_in(&mut tx, new).await;
        tx.settle(out).await
    }

    /// [`Records::create`] inside the caller's transaction.
    pub(crate) async fn create_in(&self, tx: &mut Tx<'_>, new: E::New) -> Result<Record<E>> {
        let defs = custom_fields::load(self.tenant, E::NAME, &mut tx.conn()).await?;
        let row = self.prepare_new(tx, &defs, new).await?;
        self.insert_one(tx, row).await
    }

    /// Splits a create input into the entity and its custom fields, and prepares it.
    async fn prepare_new(
        &self,
        tx: &mut Tx<'_>,
        defs: &Definitions,
        new: E::New,
    ) -> Result<Prepared> {
        let mut input = to_object(&new)?;
        let custom = CustomValues::take_new(&mut input)?;
        let entity: E = from_object(input)?;
        self.prepare(tx, defs, entity, custom, Operation::Create)
            .await
    }

    /// Creates many records in one transaction: all or none. Every record is checked as by
    /// [`Records::create`]; the statements are batched (many rows per `insert`), so this is the
    /// path for imports and seeding.
    ///
    /// # Errors
    /// [`Error::Validation`] with every problem of every record, fields prefixed by the
    /// record's index (`[3].name`); [`Error::NotFound`] for a dangling link.
    #[tracing::instrument(skip_all, fields(entity = E::NAME, org = %self.org(), n = items.len()))]
    pub async fn create_many(&self, items: Vec<E::New>) -> Result<Vec<Record<E>>> {
        let mut s = self.tenant.session().await?;
        let mut tx = s.begin().await?;
        let out = async {
            let defs = custom_fields::load(self.tenant, E::NAME, &mut tx.conn()).await?;
            let mut rows = Vec::with_capacity(items.len());
            let mut errors = Vec::new();
            for (i, new) in items.into_iter().enumerate() {
                let prepared = self.prepare_new(&mut tx, &defs, new).await;
                match prepared {
                    Ok(row) => rows.push(row),
                    Err(Error::Validation(e)) => errors.extend(e.into_iter().map(|f| FieldError {
                        field: format!("[{i}].{}", f.field),
                        ..f
                    })),
                    Err(other) => return Err(other),
                }
            }
            if !errors.is_empty() {
                return Err(Error::Validation(errors));
            }
            self.insert_prepared(&mut tx, rows).await
        }
        .await;
        tx.settle(out).await
    }

    /// Checks records as [`Records::create_many`] would, without writing anything: the error of
    /// each invalid record, by index (validation errors, and `NotFound` for dangling links).
    pub async fn validate_many(&self, items: Vec<E::New>) -> Result<Vec<(usize, Error)>> {
        let mut s = self.tenant.session().await?;
        let mut tx = s.begin().await?;
        let out = async {
            let defs = custom_fields::load(self.tenant, E::NAME, &mut tx.conn()).await?;
            let mut problems = Vec::new();
            let mut links = Vec::new();
            for (i, new) in items.into_iter().enumerate() {
                let prepared = self.prepare_new(&mut tx, &defs, new).await;
                match prepared {
                    Ok(row) => links.extend(row.links.into_iter().map(|l| (i, l))),
                    Err(e @ (Error::Validation(_) | Error::NotFound { .. })) => {
                        problems.push((i, e))
                    }
                    Err(other) => return Err(other),
                }
            }
            let all: Vec<_> = links.iter().map(|(_, l)| *l).collect();
            let missing = missing_links(&mut tx.conn(), self.org(), &all).await?;
            for (i, (kind, id)) in links {
                if let Kind::Ref { entity, .. } = kind
                    && missing.contains(&id)
                    && !problems.iter().any(|(p, _)| *p == i)
                {
                    problems.push((
                        i,
                        Error::NotFound {
                            entity,
                            id: Some(id),
                        },
                    ));
                }
            }
            problems.sort_by_key(|(i, _)| *i);
            Ok(problems)
        }
        .await;
        // Nothing is kept: hooks may have written (an invoice number), so roll it all back.
        tx.rollback().await?;
        out
    }

    async fn insert_one(&self, tx: &mut Tx<'_>, row: Prepared) -> Result<Record<E>> {
        let mut records = self.insert_prepared(tx, vec![row]).await?;
        records
            .pop()
            .ok_or_else(|| Error::Internal("an insert returned no row".into()))
    }

    /// Checks a new record (custom fields, validation, the entity's hook) and computes what
    /// its insert and its event hold.
    async fn prepare(
        &self,
        tx: &mut Tx<'_>,
        defs: &Definitions,
        mut entity: E,
        custom: Map<String, Value>,
        operation: Operation,
    ) -> Result<Prepared> {
        let custom = checked(defs.check(None, custom), validate(&entity))?;
        let mut w = WriteContext::new(tx, self.tenant, operation, Action::Created);
        entity.before_write(&mut w, None).await?;
        let action = w.action();
        validate(&entity)?;
        let values = to_object(&entity)?;
        let mut changes = Map::new();
        for c in E::COLUMNS {
            let v = field(&values, c);
            if !v.is_null() {
                changes.insert(c.name.into(), json!({ "after": v }));
            }
        }
        for (k, v) in &custom {
            changes.insert(format!("custom_fields.{k}"), json!({ "after": v }));
        }
        let links = E::COLUMNS
            .iter()
            .filter_map(|c| link(c, field(&values, c)))
            .chain(entity.links())
            .collect();
        Ok(Prepared {
            id: Uuid::now_v7(),
            values,
            links,
            custom,
            changes,
            action,
        })
    }

    /// Inserts prepared records, many rows per statement, and their events.
    async fn insert_prepared(
        &self,
        tx: &mut Tx<'_>,
        rows: Vec<Prepared>,
    ) -> Result<Vec<Record<E>>> {
        let links: Vec<_> = rows.iter().flat_map(|r| r.links.iter().copied()).collect();
        check_links(&mut tx.conn(), self.org(), &links).await?;

        let at = now();
        let actor = self.ctx().actor().id();
        // Seven common parameters a row plus the columns; SQLite takes at most 32,766 per
        // statement, PostgreSQL 65,535.
        let per_statement = (30_000 / (E::COLUMNS.len() + 7)).max(1);
        let mut records = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(per_statement) {
            let mut q = Sql::new("insert into ");
            q.push(E::TABLE).push(
                " (organization_id, id, created_at, updated_at, created_by, updated_by, version, is_deleted, custom_fields",
            );
            for c in E::COLUMNS {
                q.push(", ").push(c.name);
            }
            q.push(") values ");
            for (i, row) in chunk.iter().enumerate() {
                q.push(if i == 0 { "(" } else { ", (" });
                q.bind(self.org()).push(", ").bind(row.id);
                q.push(", ").bind(at).push(", ").bind(at);
                q.push(", ").bind(actor).push(", ").bind(actor);
                q.push(", 1, false, ")
                    .bind(Value::Object(row.custom.clone()));
                for c in E::COLUMNS {
                    q.push(", ").bind(column_arg(c, &row.values)?);
                }
                q.push(")");
            }
            q.push(" returning *");
            let mut inserted: Vec<Record<E>> = tx.conn().fetch_all(&q).await?;
            // `returning` does not promise the order of `values`.
            inserted.sort_by_key(|r| r.id);
            records.extend(inserted);
        }
        let order: std::collections::HashMap<Uuid, usize> =
            rows.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
        records.sort_by_key(|r| order.get(&r.id.uuid()).copied().unwrap_or(usize::MAX));

        let entries = rows
            .into_iter()
            .map(|r| events::Entry {
                record_id: r.id,
                action: r.action,
                changes: r.changes,
            })
            .collect();
        events::append_many(&mut tx.conn(), self.ctx(), E::NAME, entries).await?;
        Ok(records)
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
        let mut conn = s.conn();
        // Definitions are needed (and, on a cache miss, read) only to filter on custom fields.
        let defs = if query.mentions_custom_fields() {
            custom_fields::load(self.tenant, E::NAME, &mut conn).await?
        } else {
            Default::default()
        };
        let plan = compile::plan::<E>(query, self.org(), conn.backend(), &defs)?;
        let mut data: Vec<Record<E>> = conn.fetch_all(&plan.sql).await?;
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
        let custom_patch = CustomValues::take_patch(&mut patch)?;
        self.change(
            id,
            expected,
            Operation::Update,
            Action::Updated,
            move |current| {
                let mut merged = to_object(&current.fields)?;
                merged.extend(patch);
                let entity: E = from_object(merged)?;
                let custom = CustomValues::merge(&current.custom_fields, custom_patch)?;
                Ok((entity, custom))
            },
        )
        .await
    }

    /// Runs [`Records::change_in`] in a transaction of its own.
    pub(crate) async fn change(
        &self,
        id: Id<E>,
        expected: Option<i64>,
        operation: Operation,
        action: Action,
        compute: impl FnOnce(&Record<E>) -> Result<(E, Map<String, Value>)>,
    ) -> Result<Record<E>> {
        let mut s = self.tenant.session().await?;
        let mut tx = s.begin().await?;
        let out = self
            .change_in(&mut tx, id, expected, operation, action, compute)
            .await;
        tx.settle(out).await
    }

    /// The shared path of every change to a live record: lock it, check the version, compute
    /// the new fields and custom fields, check them, run the entity's hook, write what changed
    /// and log it. Nothing changed: nothing written.
    pub(crate) async fn change_in(
        &self,
        tx: &mut Tx<'_>,
        id: Id<E>,
        expected: Option<i64>,
        operation: Operation,
        action: Action,
        compute: impl FnOnce(&Record<E>) -> Result<(E, Map<String, Value>)>,
    ) -> Result<Record<E>> {
        let current = self.lock_in(tx, id, Deleted::Exclude, expected).await?;
        let (mut after, custom) = compute(&current)?;
        let custom = if custom == current.custom_fields {
            Ok(custom)
        } else {
            let defs = custom_fields::load(self.tenant, E::NAME, &mut tx.conn()).await?;
            defs.check(Some(&current.custom_fields), custom)
        };
        let custom = checked(custom, validate(&after))?;
        let mut w = WriteContext::new(tx, self.tenant, operation, action);
        after.before_write(&mut w, Some(&current.fields)).await?;
        let action = w.action();
        validate(&after)?;
        match diff(&current, &after, custom, action)? {
            Some(change) => self.write_in(tx, &current, change).await,
            None => Ok(current),
        }
    }

    /// Moves the live record `id` to the trash. Users may trash records they created or own;
    /// company admins any record.
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

    #[tracing::instrument(skip_all, fields(entity = E::NAME, org = %self.org(), delete))]
    async fn trash(&self, id: Id<E>, expected: Option<i64>, delete: bool) -> Result<Record<E>> {
        let mut s = self.tenant.session().await?;
        let mut tx = s.begin().await?;
        let out = async {
            let scope = if delete {
                Deleted::Exclude
            } else {
                Deleted::Include
            };
            let current = self.lock_in(&mut tx, id, scope, expected).await?;
            if !delete && !current.is_deleted {
                return Err(Error::Conflict(format!("{} {id} is not deleted", E::NAME)));
            }
            may_trash(self.ctx(), &current)?;
            let (action, at, by) = if delete {
                (Action::Deleted, Some(now()), self.ctx().actor().id())
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
                sets: vec![
                    ("is_deleted", Arg::Bool(Some(delete))),
                    ("deleted_at", Arg::Time(at)),
                    ("deleted_by", Arg::Uuid(by)),
                ],
                links: Vec::new(),
                changes,
            };
            self.write_in(&mut tx, &current, change).await
        }
        .await;
        tx.settle(out).await
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
            self.lock_in(&mut tx, id, Deleted::Include, None).await?;
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

    /// Permanently removes the records trashed before `cutoff` (retention), one transaction and
    /// one `purged` event each; records still linked from others are kept and counted. With
    /// `dry_run`, only counts. Company admins only.
    #[tracing::instrument(skip_all, fields(entity = E::NAME, org = %self.org()))]
    pub async fn purge_trashed_before(
        &self,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<PurgeReport> {
        if !self.ctx().role().is_admin() {
            return Err(Error::Forbidden(format!(
                "only company admins may purge {} records",
                E::NAME
            )));
        }
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

    /// Reads record `id` in `scope` for update (locked on PostgreSQL; SQLite's `BEGIN
    /// IMMEDIATE` already holds the write lock) and checks the expected version.
    pub(crate) async fn lock_in(
        &self,
        tx: &mut Tx<'_>,
        id: Id<E>,
        scope: Deleted,
        expected: Option<i64>,
    ) -> Result<Record<E>> {
        let backend = tx.conn().backend();
        let current: Record<E> = tx
            .conn()
            .fetch_optional(&select_one::<E>(self.org(), id, scope, true, backend))
            .await?
            .ok_or(Error::not_found(E::NAME, id))?;
        match expected {
            Some(expected) if expected != current.version => Err(Error::VersionMismatch {
                expected,
                actual: current.version,
            }),
            _ => Ok(current),
        }
    }

    /// Writes `change` to the locked `current` record: checks links, bumps the version, stamps
    /// the audit columns, logs the event.
    async fn write_in(
        &self,
        tx: &mut Tx<'_>,
        current: &Record<E>,
        change: Change,
    ) -> Result<Record<E>> {
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
        q.push(" and id = ").bind(current.id);
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
            current.id.uuid(),
            change.action,
            change.changes,
        )
        .await?;
        Ok(updated)
    }
}

/// The columns and custom fields that differ between `current` and `after`, as a change.
fn diff<E: Entity>(
    current: &Record<E>,
    after: &E,
    custom: Map<String, Value>,
    action: Action,
) -> Result<Option<Change>> {
    let before = to_object(&current.fields)?;
    let after_entity = after;
    let after = to_object(after)?;
    let mut change = Change {
        action,
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
    let links = after_entity.links();
    if links != current.fields.links() {
        change.links.extend(links);
    }
    if custom != current.custom_fields {
        for k in current.custom_fields.keys().chain(custom.keys()) {
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
}

/// Both checks' outcome, with every field error of both in one [`Error::Validation`].
fn checked<T>(first: Result<T>, second: Result<()>) -> Result<T> {
    match (first, second) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(Error::Validation(mut a)), Err(Error::Validation(b))) => {
            a.extend(b);
            Err(Error::Validation(a))
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
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
async fn missing_links(
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

fn field<'a>(values: &'a Map<String, Value>, c: &Column) -> &'a Value {
    values.get(c.name).unwrap_or(&Value::Null)
}

fn link(c: &Column, v: &Value) -> Option<(Kind, Uuid)> {
    match (c.kind, v) {
        (Kind::Ref { .. }, Value::String(s)) => s.parse().ok().map(|id| (c.kind, id)),
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
