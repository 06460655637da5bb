//! Merging duplicates: one record (the survivor) absorbs others of the same entity, in one
//! transaction.
//!
//! 1. The survivor and the absorbed records are locked: live, of this organization, distinct,
//!    at most [`MAX_MERGE`] absorbed. The caller must be allowed to trash each absorbed record
//!    (the owner rules of `ownership`).
//! 2. The absorbed records' unique values and match keys are freed, then the field choices are
//!    applied to the survivor through the one write path (checks, hooks, owner rules, an
//!    `updated` event).
//! 3. The absorbed records go to the trash with a `merged` event naming the survivor.
//! 4. Every reference to an absorbed record is re-pointed at the survivor, set-based, with a
//!    version bump and an `updated` event per re-pointed record: the `Ref` columns of every
//!    registered entity, and links that no column declares ([`Entity::ANY_LINK`]: activities).
//!    Records whose own rules forbid the change ([`Entity::REPOINTABLE`]: an invoice once sent)
//!    keep their link to the absorbed record, which redirects to the survivor.
//! 5. Redirects from the absorbed ids (and from what was merged into them before) to the
//!    survivor, and a `merged` event on the survivor listing the absorbed ids.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::entity::{Entity, Operation};
use super::erasure::referrers;
use super::keys;
use super::query::Deleted;
use super::redirect;
use super::row::Record;
use super::service::Records;
use super::update::Change;
use super::values::{from_object, to_object};
use crate::access::rules::Need;
use crate::entities::{EntityKind, EntityVisitor};
use crate::error::{Error, Result};
use crate::events::{self, Action};
use crate::id::Id;
use crate::storage::{Arg, Sql, Tx};
use crate::time::now;

/// The most records one merge absorbs.
pub const MAX_MERGE: usize = 10;

/// What [`Records::merge`] absorbs into the survivor, and which record's value each field keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Merge {
    /// The records to absorb (1-10, distinct, not the survivor): they go to the trash and their
    /// ids answer with the survivor from then on.
    pub absorb: Vec<Uuid>,
    /// Field name (a column, or `custom_fields.<key>`) to the id of the record (the survivor or
    /// an absorbed one) whose value the survivor keeps. Fields not named keep the survivor's.
    #[serde(default)]
    pub fields: BTreeMap<String, Uuid>,
}

impl<E: Entity> Records<'_, E> {
    /// Merges the records of `merge.absorb` into `survivor` (see the module for what moves).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use crm_core::{Crm, Merge, NewAccount, NewContact, NewOrganization, TenantContext};
    /// # let crm = Crm::connect("sqlite::memory:").await?;
    /// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
    /// let t = crm.tenant(&TenantContext::system(org.id));
    /// let keep = t.accounts().create(NewAccount { name: "Globex".into(), ..Default::default() }).await?;
    /// let dup = t.accounts().create(NewAccount { name: "Globex Inc".into(), domain: Some("globex.com".into()), ..Default::default() }).await?;
    /// let ada = t.contacts().create(NewContact { email: Some("ada@globex.com".into()), account_id: Some(dup.id), ..Default::default() }).await?;
    /// let merge = Merge { absorb: vec![dup.id.uuid()], fields: [("domain".into(), dup.id.uuid())].into() };
    /// let kept = t.accounts().merge(keep.id, merge).await?;
    /// assert_eq!(kept.domain.as_deref(), Some("globex.com"));
    /// assert_eq!(t.contacts().get(ada.id).await?.account_id, Some(keep.id));
    /// assert!(matches!(t.accounts().get(dup.id).await, Err(crm_core::Error::Moved { .. })));
    /// # Ok::<_, crm_core::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Validation`] when the entity is not mergeable (`not_mergeable`: invoices, whose
    /// numbers are legal records), or for a bad `absorb` list or field choice;
    /// [`Error::NotFound`] when a record is not a live record of this organization;
    /// [`Error::Forbidden`] (`not_owner`) for a user who may not trash an absorbed record, or
    /// change the owner; [`Error::Conflict`] when the entity keeps an absorbed record.
    #[tracing::instrument(level = "debug", skip_all, fields(entity = E::NAME, org = %self.org()))]
    pub async fn merge(&self, survivor: Id<E>, merge: Merge) -> Result<Record<E>> {
        self.merge_at(survivor, None, merge).await
    }

    /// Like [`Records::merge`], but only if the survivor is still at `version`.
    pub async fn merge_if_version(
        &self,
        survivor: Id<E>,
        version: i64,
        merge: Merge,
    ) -> Result<Record<E>> {
        self.merge_at(survivor, Some(version), merge).await
    }

    async fn merge_at(
        &self,
        survivor: Id<E>,
        expected: Option<i64>,
        merge: Merge,
    ) -> Result<Record<E>> {
        check::<E>(survivor.uuid(), &merge)?;
        let merge = &merge;
        self.tenant
            .retrying(|| async move {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = self
                    .merge_in(&mut tx, survivor, expected, merge.clone())
                    .await;
                tx.settle(out).await
            })
            .await
    }

    async fn merge_in(
        &self,
        tx: &mut Tx<'_>,
        survivor: Id<E>,
        expected: Option<i64>,
        merge: Merge,
    ) -> Result<Record<E>> {
        let org = self.org();
        let kept = self
            .lock_in(tx, survivor, Deleted::Exclude, expected, Need::Write)
            .await?;
        // Locked in id order, so that two merges of the same records cannot deadlock.
        let mut ids = merge.absorb.clone();
        ids.sort_unstable();
        let mut absorbed = Vec::with_capacity(ids.len());
        for id in &ids {
            let record = self
                .lock_in(tx, Id::from_uuid(*id), Deleted::Exclude, None, Need::Delete)
                .await?;
            record.fields.may_trash()?;
            absorbed.push(record);
        }

        // The survivor may take an absorbed record's unique values: free them first.
        keys::forget(&mut tx.conn(), org, E::NAME, &ids).await?;

        if !merge.fields.is_empty() {
            let fields = merge.fields.clone();
            let sources: Vec<&Record<E>> = absorbed.iter().chain([&kept]).collect();
            self.change_in(
                tx,
                survivor,
                None,
                Operation::Update,
                Action::Updated,
                move |current| {
                    let mut values = to_object(&current.fields)?;
                    let mut custom = current.custom_fields.clone();
                    for (name, from) in &fields {
                        let Some(source) = sources.iter().find(|r| r.id.uuid() == *from) else {
                            continue;
                        };
                        match name.strip_prefix("custom_fields.") {
                            Some(key) => match source.custom_fields.get(key) {
                                Some(v) => {
                                    custom.insert(key.to_owned(), v.clone());
                                }
                                None => {
                                    custom.remove(key);
                                }
                            },
                            None => {
                                let v = to_object(&source.fields)?
                                    .remove(name)
                                    .unwrap_or(Value::Null);
                                values.insert(name.clone(), v);
                            }
                        }
                    }
                    Ok((from_object(values)?, custom))
                },
            )
            .await?;
        }

        let at = now();
        let actor = self.ctx().actor().id();
        for record in &absorbed {
            let mut changes = Map::new();
            changes.insert(
                "is_deleted".into(),
                json!({ "before": false, "after": true }),
            );
            changes.insert(
                "merged_into".into(),
                json!({ "before": null, "after": survivor }),
            );
            let change = Change {
                action: Action::Merged,
                at,
                sets: vec![
                    ("is_deleted", Arg::Bool(Some(true))),
                    ("deleted_at", Arg::Time(Some(at))),
                    ("deleted_by", Arg::Uuid(actor)),
                ],
                links: Vec::new(),
                changes,
            };
            self.write_in(tx, record, change).await?;
        }

        for id in &ids {
            self.repoint(tx, *id, survivor.uuid(), at).await?;
        }
        redirect::add(&mut tx.conn(), org, E::NAME, &ids, survivor.uuid(), at).await?;

        // The survivor's own `merged` write, on its state after the choices and re-pointing.
        let current = self
            .lock_in(tx, survivor, Deleted::Exclude, None, Need::Write)
            .await?;
        let mut changes = Map::new();
        changes.insert("absorbed".into(), json!({ "before": null, "after": ids }));
        let change = Change {
            action: Action::Merged,
            at,
            sets: Vec::new(),
            links: Vec::new(),
            changes,
        };
        self.write_in(tx, &current, change).await
    }

    /// Points every reference to `from` at `to`: the `Ref` columns of every entity that link to
    /// `E`, and the links no column declares; one statement each, an `updated` event per
    /// re-pointed record.
    async fn repoint(
        &self,
        tx: &mut Tx<'_>,
        from: Uuid,
        to: Uuid,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        let mut targets: Vec<(EntityKind, &'static str, Option<&'static str>)> =
            referrers(E::TABLE)
                .map(|r| (r.kind, r.column, None))
                .collect();
        for kind in EntityKind::ALL {
            if let Some((kind_column, id_column)) = kind.visit(RepointRules).0 {
                targets.push((*kind, id_column, Some(kind_column)));
            }
        }
        for (kind, column, kind_column) in targets {
            let mut q = Sql::new("update ");
            q.push(kind.table())
                .push(" set ")
                .push(column)
                .push(" = ")
                .bind(to);
            q.push(", version = version + 1, updated_at = ").bind(at);
            q.push(", updated_by = ").bind(self.ctx().actor().id());
            q.push(" where organization_id = ").bind(self.org());
            q.push(" and ").push(column).push(" = ").bind(from);
            if let Some(kind_column) = kind_column {
                q.push(" and ").push(kind_column).push(" = ").bind(E::NAME);
            }
            if let Some(repointable) = kind.visit(RepointRules).1 {
                q.push(" and (").push(repointable).push(")");
            }
            q.push(" returning id");
            let ids: Vec<(Uuid,)> = tx.conn().fetch_all(&q).await?;
            if ids.is_empty() {
                continue;
            }
            let entries = ids
                .iter()
                .map(|(id,)| {
                    let mut changes = Map::new();
                    changes.insert(column.into(), json!({ "before": from, "after": to }));
                    events::Entry {
                        record_id: *id,
                        action: Action::Updated,
                        changes,
                    }
                })
                .collect();
            events::append_many(&mut tx.conn(), self.ctx(), kind.name(), entries, at).await?;
            // Roll-ups over the re-pointed kind: `from` lost these records, `to` gained them.
            if kind_column.is_none() {
                crate::custom_fields::refresh_for(tx, self.tenant, kind, || {
                    Ok([from, to]
                        .into_iter()
                        .map(|id| Map::from_iter([(column.to_owned(), json!(id))]))
                        .collect())
                })
                .await?;
            }
        }
        Ok(())
    }
}

/// What a merge re-points in records of the visited kind: its [`Entity::ANY_LINK`] and its
/// [`Entity::REPOINTABLE`].
struct RepointRules;

impl EntityVisitor for RepointRules {
    type Output = (Option<(&'static str, &'static str)>, Option<&'static str>);

    fn visit<K: Entity>(self) -> Self::Output {
        (K::ANY_LINK, K::REPOINTABLE)
    }
}

/// Checks a merge before anything is read: the entity, the list, the field choices.
fn check<E: Entity>(survivor: Uuid, merge: &Merge) -> Result<()> {
    if !E::MERGEABLE {
        return Err(Error::invalid(
            "entity",
            "not_mergeable",
            format!("{} records cannot be merged", E::NAME),
        ));
    }
    let mut v = crate::validation::Validator::new();
    let distinct = merge
        .absorb
        .iter()
        .enumerate()
        .all(|(i, id)| *id != survivor && !merge.absorb[..i].contains(id));
    v.check(
        (1..=MAX_MERGE).contains(&merge.absorb.len()) && distinct,
        "absorb",
        "invalid_value",
        "must name 1-10 distinct records other than the survivor",
    );
    for (name, from) in &merge.fields {
        let field = format!("fields.{name}");
        let known = match name.strip_prefix("custom_fields.") {
            Some(key) => crate::storage::FieldKey::new(key).is_some(),
            None => E::COLUMNS.iter().any(|c| c.name == name && !c.readonly),
        };
        v.check(
            known,
            &field,
            "unknown_field",
            "is not a writable field of this record",
        );
        v.check(
            *from == survivor || merge.absorb.contains(from),
            &field,
            "invalid_value",
            "must name the survivor or an absorbed record",
        );
    }
    v.finish()
}
