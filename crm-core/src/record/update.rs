//! Changing records: patches (with or without an expected version), the changes entity verbs
//! make, and the one place every change is written.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::checks::{checked, validate};
use super::entity::{Entity, Operation, WriteContext};
use super::fields::Kind;
use super::keys;
use super::link::{check_links, link_of};
use super::ownership::may_change_owner;
use super::projection::check_writable;
use super::query::Deleted;
use super::row::Record;
use super::service::Records;
use super::values::{column_arg, field, from_object, to_object};
use crate::access::rules::Need;
use crate::custom_fields::CustomValues;
use crate::custom_fields::{self};
use crate::error::{Error, Result};
use crate::events::{self, Action};
use crate::id::Id;
use crate::storage::{Arg, Sql, Tx};
use crate::time::now;

/// What a write changes, computed from the current record.
pub(super) struct Change {
    pub(super) action: Action,
    /// When it happens: the record's `updated_at` and its event's time.
    pub(super) at: DateTime<Utc>,
    pub(super) sets: Vec<(&'static str, Arg)>,
    /// Links to check (target must exist, live, in the same organization).
    pub(super) links: Vec<(Kind, Uuid)>,
    pub(super) changes: Map<String, Value>,
}

impl<E: Entity> Records<'_, E> {
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

    #[tracing::instrument(level = "debug", skip_all, fields(entity = E::NAME, org = %self.org()))]
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
                merged.extend(patch.clone());
                let entity: E = from_object(merged)?;
                let custom = CustomValues::merge(&current.custom_fields, custom_patch.clone())?;
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
        compute: impl Fn(&Record<E>) -> Result<(E, Map<String, Value>)>,
    ) -> Result<Record<E>> {
        let compute = &compute;
        self.tenant
            .retrying(|| async move {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = self
                    .change_in(&mut tx, id, expected, operation, action, compute)
                    .await;
                tx.settle(out).await
            })
            .await
    }

    /// The shared path of every change to a live record: lock it, check the version, compute
    /// the new fields and custom fields, check them, run the entity's hook, check that the
    /// caller may change the owner if it changes (see `ownership`), write what changed and log
    /// it. Nothing changed: nothing written.
    pub(crate) async fn change_in(
        &self,
        tx: &mut Tx<'_>,
        id: Id<E>,
        expected: Option<i64>,
        operation: Operation,
        action: Action,
        compute: impl FnOnce(&Record<E>) -> Result<(E, Map<String, Value>)>,
    ) -> Result<Record<E>> {
        let current = self
            .lock_in(tx, id, Deleted::Exclude, expected, Need::Write)
            .await?;
        let (mut after, custom) = compute(&current)?;
        let grants = self.tenant.grants_in(&mut tx.conn()).await?;
        if grants.field_rules(E::TABLE).next().is_some() {
            let (before, now) = (to_object(&current.fields)?, to_object(&after)?);
            let written = E::COLUMNS
                .iter()
                .filter(|c| before.get(c.name) != now.get(c.name))
                .map(|c| (c.name, false))
                .chain(
                    custom
                        .iter()
                        .filter(|(k, v)| current.custom_fields.get(*k) != Some(*v))
                        .map(|(k, _)| (k.as_str(), true)),
                )
                .chain(
                    current
                        .custom_fields
                        .keys()
                        .filter(|k| !custom.contains_key(*k))
                        .map(|k| (k.as_str(), true)),
                );
            check_writable(&grants, E::TABLE, written)?;
        }
        let defs = custom_fields::load(self.tenant, E::NAME, &mut tx.conn()).await?;
        let custom = if custom == current.custom_fields {
            Ok(custom)
        } else {
            defs.check(Some(&current.custom_fields), custom)
        };
        let mut custom = checked(custom, validate(&after))?;
        let mut w = WriteContext::new(tx, self.tenant, operation, action);
        after.before_write(&mut w, Some(&current.fields)).await?;
        let action = w.action();
        validate(&after)?;
        may_change_owner(self.ctx(), &current, &after)?;
        defs.apply_formulas(&after, &mut custom)?;
        match diff(&current, &after, custom, action)? {
            Some(change) => self.write_in(tx, &current, change).await,
            None => Ok(current),
        }
    }

    /// Writes `change` to the locked `current` record: checks links, bumps the version, stamps
    /// the audit columns, logs the event.
    pub(super) async fn write_in(
        &self,
        tx: &mut Tx<'_>,
        current: &Record<E>,
        change: Change,
    ) -> Result<Record<E>> {
        check_links(&mut tx.conn(), self.org(), &change.links).await?;
        // Unique values and match keys follow the columns and custom fields they come from.
        let matched = change
            .sets
            .iter()
            .any(|(column, _)| E::MATCH_ON.iter().any(|m| m.columns.contains(column)));
        let custom = change
            .sets
            .iter()
            .any(|(column, _)| *column == "custom_fields");
        let mut q = Sql::new("update ");
        q.push(E::TABLE)
            .push(" set version = version + 1, updated_at = ")
            .bind(change.at);
        q.push(", updated_by = ").bind(self.ctx().actor().id());
        for (column, value) in change.sets {
            q.push(", ").push(column).push(" = ").bind(value);
        }
        q.push(" where organization_id = ").bind(self.org());
        q.push(" and id = ").bind(current.id);
        q.push(" and version = ").bind(current.version);
        q.push(" returning ").push(E::SELECT);
        let updated: Record<E> =
            tx.conn()
                .fetch_optional(&q)
                .await?
                .ok_or(Error::VersionMismatch {
                    expected: current.version,
                    actual: current.version + 1,
                })?;
        let defs = if matched || custom {
            Some(custom_fields::load(self.tenant, E::NAME, &mut tx.conn()).await?)
        } else {
            None
        };
        // A custom-field change moves keys only where some field is unique.
        if let Some(defs) = defs.filter(|d| matched || d.unique().next().is_some()) {
            let key = |r: &Record<E>| -> Result<_> {
                Ok(keys::keys_of::<E>(
                    &defs,
                    &to_object(&r.fields)?,
                    &r.custom_fields,
                ))
            };
            let (before, after) = (key(current)?, key(&updated)?);
            let id = current.id.uuid();
            keys::replace(&mut tx.conn(), self.org(), E::NAME, id, &before, &after).await?;
        }
        let entry = events::Entry {
            record_id: current.id.uuid(),
            action: change.action,
            changes: change.changes,
        };
        events::append_many(&mut tx.conn(), self.ctx(), E::NAME, vec![entry], change.at).await?;
        // Roll-ups over this kind, on the records it linked to before and links to now.
        custom_fields::refresh_for(tx, self.tenant, E::KIND, || {
            Ok(vec![
                to_object(&current.fields)?,
                to_object(&updated.fields)?,
            ])
        })
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
        at: now(),
        sets: Vec::new(),
        links: Vec::new(),
        changes: Map::new(),
    };
    for c in E::COLUMNS {
        let (b, a) = (field(&before, c), field(&after, c));
        if b != a {
            change.sets.push((c.name, column_arg(c, &after)?));
            change.links.extend(link_of(c, a));
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
