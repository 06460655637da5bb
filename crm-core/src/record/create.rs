//! Creating records: one, or a batch all or nothing, and checking a batch without writing.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::checks::{checked, validate};
use super::entity::{Entity, Operation, WriteContext};
use super::fields::Kind;
use super::link::{check_links, link_of, missing_links};
use super::row::Record;
use super::service::Records;
use super::values::{column_arg, field, from_object, to_object};
use crate::custom_fields::CustomValues;
use crate::custom_fields::{self, Definitions};
use crate::error::{Error, FieldError, Result};
use crate::events::{self, Action};
use crate::storage::{Sql, Tx};
use crate::time::now;

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

impl<E: Entity> Records<'_, E> {
    /// Creates a record.
    ///
    /// # Errors
    /// [`Error::Validation`] for invalid fields or custom fields (every problem at once);
    /// [`Error::NotFound`] when a link (`account_id`, `owner_id`…) names no live record of this
    /// organization.
    #[tracing::instrument(level = "debug", skip_all, fields(entity = E::NAME, org = %self.org()))]
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
    #[tracing::instrument(level = "debug", skip_all, fields(entity = E::NAME, org = %self.org(), n = items.len()))]
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
            .filter_map(|c| link_of(c, field(&values, c)))
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
        events::append_many(&mut tx.conn(), self.ctx(), E::NAME, entries, at).await?;
        Ok(records)
    }
}
