//! Creating records: one, or a batch all or nothing, and checking a batch without writing.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::checks::{checked, validate};
use super::entity::{Entity, Operation, WriteContext};
use super::fields::Kind;
use super::link::{check_links, link_of, missing_links};
use super::projection::check_writable;
use super::row::{COMMON_FIELDS, Record};
use super::service::Records;
use super::values::{column_arg, field, from_object, to_object};
use super::visible::readable;
use crate::custom_fields::CustomValues;
use crate::custom_fields::{self, Definitions};
use crate::error::{Error, FieldError, Result};
use crate::events::{self, Action};
use crate::id::Id;
use crate::storage::{Rows, Tx};
use crate::time::now;

use super::keys::{self, Duplicate, DuplicatePolicy, Keys, MatchRule};

/// A new record, checked and ready to insert.
struct Prepared {
    id: Uuid,
    values: Map<String, Value>,
    /// Records it links to (columns and the entity's own links).
    links: Vec<(Kind, Uuid)>,
    custom: Map<String, Value>,
    changes: Map<String, Value>,
    action: Action,
    /// Its unique values and match keys.
    keys: Keys,
}

/// What [`Records::create_with`] answers: the new record and the records it may duplicate.
#[derive(Debug, Clone)]
pub struct Created<E> {
    /// The record as stored.
    pub record: Record<E>,
    /// The live records it looks like (empty with [`DuplicatePolicy::Ignore`]).
    pub duplicates: Vec<Duplicate>,
}

/// What [`Records::import_with`] answers: the new ids, in the order of the items, and the
/// records each item may duplicate (by its `index`; an earlier item of the batch counts too).
#[derive(Debug, Clone)]
pub struct Imported<E> {
    /// The new ids.
    pub ids: Vec<Id<E>>,
    /// The likely duplicates (empty with [`DuplicatePolicy::Ignore`]).
    pub duplicates: Vec<Duplicate>,
}

impl<E: Entity> Records<'_, E> {
    /// Creates a record.
    ///
    /// # Errors
    /// [`Error::Validation`] for invalid fields or custom fields (every problem at once);
    /// [`Error::NotFound`] when a link (`account_id`, `owner_id`…) names no live record of this
    /// organization.
    #[tracing::instrument(level = "debug", skip_all, fields(entity = E::NAME, org = %self.org()))]
    pub async fn create(&self, new: E::New) -> Result<Record<E>> {
        let new = &new;
        self.tenant
            .retrying(|| async move {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = self.create_in(&mut tx, new.clone()).await;
                tx.settle(out).await
            })
            .await
    }

    /// [`Records::create`] inside the caller's transaction.
    pub(crate) async fn create_in(&self, tx: &mut Tx<'_>, new: E::New) -> Result<Record<E>> {
        let defs = custom_fields::load(self.tenant, E::NAME, &mut tx.conn()).await?;
        let row = self.prepare_new(tx, &defs, new).await?;
        self.insert_one(tx, row).await
    }

    /// Creates a record after looking for live records it may duplicate, by the entity's match
    /// rules ([`Entity::MATCH_ON`]: email, domain, normalized name): with
    /// [`DuplicatePolicy::Warn`] it is created and the matches are answered, with
    /// [`DuplicatePolicy::Reject`] a match refuses it. The lookup is one indexed query.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use crm_core::{Crm, DuplicatePolicy, MatchRule, NewContact, NewOrganization, TenantContext};
    /// # let crm = Crm::connect("sqlite::memory:").await?;
    /// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
    /// let t = crm.tenant(&TenantContext::system(org.id));
    /// let ada = || NewContact { email: Some("Ada@Example.com".into()), ..Default::default() };
    /// let first = t.contacts().create(ada()).await?;
    /// let second = t.contacts().create_with(ada(), DuplicatePolicy::Warn).await?;
    /// assert_eq!(second.duplicates[0].id, first.id.uuid());
    /// assert_eq!(second.duplicates[0].rule, MatchRule::Email);
    /// assert!(t.contacts().create_with(ada(), DuplicatePolicy::Reject).await.is_err());
    /// # Ok::<_, crm_core::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`Records::create`]; [`Error::Duplicates`] with [`DuplicatePolicy::Reject`].
    #[tracing::instrument(level = "debug", skip_all, fields(entity = E::NAME, org = %self.org()))]
    pub async fn create_with(&self, new: E::New, policy: DuplicatePolicy) -> Result<Created<E>> {
        let new = &new;
        self.tenant
            .retrying(|| async move {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = async {
                    let defs = custom_fields::load(self.tenant, E::NAME, &mut tx.conn()).await?;
                    let row = self.prepare_new(&mut tx, &defs, new.clone()).await?;
                    let duplicates = self
                        .duplicates(&mut tx, std::slice::from_ref(&row), policy)
                        .await?;
                    let record = self.insert_one(&mut tx, row).await?;
                    Ok(Created { record, duplicates })
                }
                .await;
                tx.settle(out).await
            })
            .await
    }

    /// [`Records::import`] that looks for duplicates as [`Records::create_with`] does, among the
    /// live records and within the batch (an item like an earlier one).
    ///
    /// # Errors
    /// As [`Records::import`]; [`Error::Duplicates`] (every match) with
    /// [`DuplicatePolicy::Reject`].
    #[tracing::instrument(level = "debug", skip_all, fields(entity = E::NAME, org = %self.org(), n = items.len()))]
    pub async fn import_with(
        &self,
        items: Vec<E::New>,
        policy: DuplicatePolicy,
    ) -> Result<Imported<E>> {
        let (ids, _, duplicates) = self.insert_many(items, false, policy).await?;
        Ok(Imported {
            ids: ids.into_iter().map(Id::from_uuid).collect(),
            duplicates,
        })
    }

    /// The live records (and earlier items of `rows`) that `rows` may duplicate; refuses them
    /// all when the policy says so.
    async fn duplicates(
        &self,
        tx: &mut Tx<'_>,
        rows: &[Prepared],
        policy: DuplicatePolicy,
    ) -> Result<Vec<Duplicate>> {
        if policy == DuplicatePolicy::Ignore || E::MATCH_ON.is_empty() {
            return Ok(Vec::new());
        }
        let mut wanted: Vec<(MatchRule, String)> = rows
            .iter()
            .flat_map(|r| r.keys.matches.iter().cloned())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut found = keys::lookup::<E>(&mut tx.conn(), self.org(), &wanted).await?;
        let grants = self.tenant().grants_in(&mut tx.conn()).await?;
        if !grants.sees_everything() {
            // No oracle: a match is told only of a record the caller reads. (Rules over a field
            // hidden from them never match: they cannot write it.)
            let ids: Vec<Uuid> = found.iter().map(|(.., id)| *id).collect();
            let seen = readable(&mut tx.conn(), self.org(), &grants, E::KIND, &ids).await?;
            found.retain(|(.., id)| seen.contains(id));
        }
        let mut existing: std::collections::HashMap<(MatchRule, String), Vec<Uuid>> =
            std::collections::HashMap::new();
        for (rule, value, id) in found {
            existing.entry((rule, value)).or_default().push(id);
        }
        let mut earlier: std::collections::HashMap<(MatchRule, &str), Uuid> =
            std::collections::HashMap::new();
        let mut out = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            for (rule, value) in &row.keys.matches {
                for id in existing.get(&(*rule, value.clone())).into_iter().flatten() {
                    out.push(Duplicate {
                        index,
                        id: *id,
                        rule: *rule,
                    });
                }
                match earlier.get(&(*rule, value.as_str())) {
                    Some(id) => out.push(Duplicate {
                        index,
                        id: *id,
                        rule: *rule,
                    }),
                    None => {
                        earlier.insert((*rule, value.as_str()), row.id);
                    }
                }
            }
        }
        if policy == DuplicatePolicy::Reject && !out.is_empty() {
            return Err(Error::Duplicates {
                entity: E::NAME,
                matches: out,
            });
        }
        Ok(out)
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
    /// [`Records::create`]; the statements are batched (one per batch on PostgreSQL, many rows
    /// per statement on SQLite).
    ///
    /// # Errors
    /// [`Error::Validation`] with every problem of every record, fields prefixed by the
    /// record's index (`[3].name`); [`Error::NotFound`] for a dangling link.
    #[tracing::instrument(level = "debug", skip_all, fields(entity = E::NAME, org = %self.org(), n = items.len()))]
    pub async fn create_many(&self, items: Vec<E::New>) -> Result<Vec<Record<E>>> {
        Ok(self
            .insert_many(items, true, DuplicatePolicy::Ignore)
            .await?
            .1)
    }

    /// [`Records::create_many`] that answers only the new ids, in the order of `items`: the
    /// database does not send the records back, which makes it the path for imports and
    /// seeding. Checks, events and the change feed are the same.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use crm_core::{Crm, NewContact, NewOrganization, TenantContext};
    ///
    /// let crm = Crm::connect("sqlite::memory:").await?;
    /// let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
    /// let t = crm.tenant(&TenantContext::system(org.id));
    /// let new = (0..3).map(|i| NewContact { last_name: Some(format!("Doe {i}")), ..Default::default() });
    /// let ids = t.contacts().import(new.collect()).await?;
    /// assert_eq!(t.contacts().get(ids[2]).await?.last_name.as_deref(), Some("Doe 2"));
    /// # Ok::<_, crm_core::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`Records::create_many`].
    #[tracing::instrument(level = "debug", skip_all, fields(entity = E::NAME, org = %self.org(), n = items.len()))]
    pub async fn import(&self, items: Vec<E::New>) -> Result<Vec<Id<E>>> {
        let (ids, _, _) = self
            .insert_many(items, false, DuplicatePolicy::Ignore)
            .await?;
        Ok(ids.into_iter().map(Id::from_uuid).collect())
    }

    /// Checks and inserts `items` in one transaction: their ids, and the records as stored when
    /// `read_back`.
    async fn insert_many(
        &self,
        items: Vec<E::New>,
        read_back: bool,
        policy: DuplicatePolicy,
    ) -> Result<(Vec<Uuid>, Vec<Record<E>>, Vec<Duplicate>)> {
        let items = &items;
        self.tenant
            .retrying(|| async move {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = async {
                    let defs = custom_fields::load(self.tenant, E::NAME, &mut tx.conn()).await?;
                    let mut rows = Vec::with_capacity(items.len());
                    let mut errors = Vec::new();
                    for (i, new) in items.iter().cloned().enumerate() {
                        let prepared = self.prepare_new(&mut tx, &defs, new).await;
                        match prepared {
                            Ok(row) => rows.push(row),
                            Err(Error::Validation(e)) => {
                                errors.extend(e.into_iter().map(|f| FieldError {
                                    field: format!("[{i}].{}", f.field),
                                    ..f
                                }))
                            }
                            Err(other) => return Err(other),
                        }
                    }
                    if !errors.is_empty() {
                        return Err(Error::Validation(errors));
                    }
                    let duplicates = self.duplicates(&mut tx, &rows, policy).await?;
                    let ids = rows.iter().map(|r| r.id).collect();
                    let records = self.insert_prepared(&mut tx, rows, read_back).await?;
                    Ok((ids, records, duplicates))
                }
                .await;
                tx.settle(out).await
            })
            .await
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
        let mut records = self.insert_prepared(tx, vec![row], true).await?;
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
        let grants = self.tenant.grants_in(&mut tx.conn()).await?;
        grants.require_create(E::TABLE)?;
        if grants.field_rules(E::TABLE).next().is_some() {
            let values = to_object(&entity)?;
            let written = E::COLUMNS
                .iter()
                .filter(|c| !field(&values, c).is_null())
                .map(|c| (c.name, false))
                .chain(custom.keys().map(|k| (k.as_str(), true)));
            check_writable(&grants, E::TABLE, written)?;
        }
        let mut custom = checked(defs.check(None, custom), validate(&entity))?;
        let mut w = WriteContext::new(tx, self.tenant, operation, Action::Created);
        entity.before_write(&mut w, None).await?;
        let action = w.action();
        validate(&entity)?;
        let values = to_object(&entity)?;
        defs.apply_computed_new(&values, &mut custom)?;
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
            .filter_map(|c| link_of(c, field(&values, c)))
            .chain(entity.links())
            .collect();
        let keys = keys::keys_of::<E>(defs, &values, &custom);
        Ok(Prepared {
            keys,
            id: Uuid::now_v7(),
            values,
            links,
            custom,
            changes,
            action,
        })
    }

    /// Inserts prepared records, many rows per statement, and their events; reads the records
    /// back when `read_back` (otherwise the answer is empty: the caller has the ids).
    async fn insert_prepared(
        &self,
        tx: &mut Tx<'_>,
        mut rows: Vec<Prepared>,
        read_back: bool,
    ) -> Result<Vec<Record<E>>> {
        let links: Vec<_> = rows.iter().flat_map(|r| r.links.iter().copied()).collect();
        check_links(&mut tx.conn(), self.org(), &links).await?;

        let at = now();
        let actor = self.ctx().actor().id();
        // The common columns up to `is_deleted` (the trash columns stay null), then the
        // record's own.
        let mut columns = COMMON_FIELDS[..8].to_vec();
        columns.push("custom_fields");
        columns.extend(E::COLUMNS.iter().map(|c| c.name));
        let mut table = Rows::new(E::TABLE, columns, rows.len());
        for row in &mut rows {
            table.push(row.id).push(self.org());
            table.push(at).push(at).push(actor).push(actor);
            table.push(1_i64).push(false);
            // Moved, not copied: only the row needs the custom fields from here on.
            table.push(Value::Object(std::mem::take(&mut row.custom)));
            for c in E::COLUMNS {
                table.push(column_arg(c, &row.values)?);
            }
        }
        let mut records = Vec::with_capacity(if read_back { rows.len() } else { 0 });
        let backend = tx.conn().backend();
        let table = if read_back {
            table.returning(E::SELECT)
        } else {
            table
        };
        for q in table.statements(backend, "")? {
            if read_back {
                records.extend(tx.conn().fetch_all::<Record<E>>(&q).await?);
            } else {
                tx.conn().execute(&q).await?;
            }
        }
        if read_back {
            // `returning` does not promise the order of the rows.
            let order: std::collections::HashMap<Uuid, usize> =
                rows.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
            records.sort_by_key(|r| order.get(&r.id.uuid()).copied().unwrap_or(usize::MAX));
        }

        let keyed: Vec<(Uuid, &Keys)> = rows.iter().map(|r| (r.id, &r.keys)).collect();
        keys::insert(&mut tx.conn(), self.org(), E::NAME, &keyed).await?;

        // Roll-ups over this kind, on the records the new ones link to.
        custom_fields::refresh_for(tx, self.tenant, E::KIND, || {
            Ok(rows.iter().map(|r| r.values.clone()).collect())
        })
        .await?;
        let entries = rows
            .into_iter()
            .map(|r| events::Entry {
                record_id: r.id,
                action: r.action,
                changes: r.changes,
            })
            .collect();
        events::append_many(&mut tx.conn(), self.ctx(), E::NAME, entries, at).await?;
        Ok(records)
    }
}
