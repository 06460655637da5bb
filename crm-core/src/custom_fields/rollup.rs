//! Roll-ups kept current: every write to a record that a roll-up counts refreshes the roll-up
//! on the records it links to, in the same transaction, with one set-based statement per
//! roll-up definition.
//!
//! Finding what to refresh costs a cache read per link column of the written kind (the
//! definitions of each kind it links to, from the definitions cache): a kind that no roll-up
//! counts costs nothing more. A refresh locks the parent rows first (PostgreSQL; in id order,
//! so that two writers never deadlock), so that its statement sees every committed write to
//! their related records; it does not bump the parent's version, touch its `updated_at` or log
//! an event: the value is derived, and the write that changed it is in the log.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use uuid::Uuid;

use super::computation::{Computed, RollupFunction, RollupSpec};
use super::computed::Aggregated;
use super::definition::{CustomFieldDefinition, CustomFieldType};
use super::typed::load;
use crate::entities::EntityKind;
use crate::error::{Error, FieldError, Result};
use crate::organizations::OrganizationId;
use crate::record::Kind;
use crate::storage::{Conn, FieldKey, Sql, Tx};
use crate::tenant::Tenant;

/// A roll-up to maintain: its definition on `parent`, over records of the written kind.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    parent: EntityKind,
    def: CustomFieldDefinition,
    spec: RollupSpec,
}

/// The live roll-ups that count records of `child`, through the definitions cache.
async fn targets(tenant: &Tenant, child: EntityKind, conn: &mut Conn<'_>) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    let mut seen: Vec<EntityKind> = Vec::new();
    for c in child.columns() {
        let Kind::Ref { table, .. } = c.kind else {
            continue;
        };
        let Some(parent) = EntityKind::from_table(table) else {
            continue;
        };
        if seen.contains(&parent) {
            continue;
        }
        seen.push(parent);
        let defs = load(tenant, parent.name(), conn).await?;
        for d in defs.defs.iter().filter(|d| !d.archived) {
            if let Some(Computed::Rollup(spec)) = &d.computed
                && spec.entity == child.name()
            {
                out.push(Target {
                    parent,
                    def: d.clone(),
                    spec: spec.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Refreshes the roll-ups over `child` records on the records that `records` (the written
/// records' fields, as JSON, before and after the write) link to. `records` is only called
/// when some roll-up counts `child`.
pub(crate) async fn refresh_for(
    tx: &mut Tx<'_>,
    tenant: &Tenant,
    child: EntityKind,
    records: impl FnOnce() -> Result<Vec<Map<String, Value>>>,
) -> Result<()> {
    let targets = targets(tenant, child, &mut tx.conn()).await?;
    if targets.is_empty() {
        return Ok(());
    }
    let records = records()?;
    let child_defs = load(tenant, child.name(), &mut tx.conn()).await?;
    let org = tenant.context().organization_id();
    for t in &targets {
        let parents: BTreeSet<Uuid> = records
            .iter()
            .filter_map(|r| r.get(&t.spec.link)?.as_str()?.parse().ok())
            .collect();
        if parents.is_empty() {
            continue;
        }
        let parents: Vec<Uuid> = parents.into_iter().collect();
        let backend = tx.conn().backend();
        if !backend.lock_rows().is_empty() {
            let mut lock = Sql::new("select id from ");
            lock.push(t.parent.table())
                .push(" where organization_id = ")
                .bind(org)
                .push(" and id in (");
            lock.bind_list(parents.iter().map(|p| (*p).into()))
                .push(") order by id")
                .push(backend.lock_rows());
            tx.conn().fetch_all::<(Uuid,)>(&lock).await?;
        }
        let q = statement(
            t.parent,
            &t.def,
            &t.spec,
            org,
            &child_defs.defs,
            backend,
            Some(&parents),
        )
        .map_err(Error::Validation)?;
        tx.conn().execute(&q).await?;
    }
    Ok(())
}

/// The links of record `id` of `child` that roll-ups count through (as `{link: parent id}`
/// maps for [`refresh_for`]), read before the record is removed (erasure); empty when no
/// roll-up counts `child`.
pub(crate) async fn linked_before_removal(
    tx: &mut Tx<'_>,
    tenant: &Tenant,
    child: EntityKind,
    id: Uuid,
) -> Result<Vec<Map<String, Value>>> {
    let targets = targets(tenant, child, &mut tx.conn()).await?;
    let mut out = Vec::new();
    for t in &targets {
        let Some(link) = child.columns().iter().find(|c| c.name == t.spec.link) else {
            continue;
        };
        let mut q = Sql::new("select ");
        q.push(link.name).push(" from ").push(child.table());
        q.push(" where organization_id = ")
            .bind(tenant.context().organization_id())
            .push(" and id = ")
            .bind(id);
        if let Some((Some(parent),)) = tx.conn().fetch_optional::<(Option<Uuid>,)>(&q).await? {
            let mut m = Map::new();
            m.insert(link.name.into(), Value::String(parent.to_string()));
            out.push(m);
        }
    }
    Ok(out)
}

/// Sets the roll-up `def` (on `parent`) of every record of the organization: on define and on
/// a change of its definition.
pub(crate) async fn backfill(
    tx: &mut Tx<'_>,
    tenant: &Tenant,
    parent: EntityKind,
    def: &CustomFieldDefinition,
    spec: &RollupSpec,
) -> Result<()> {
    let child: EntityKind = spec.entity.parse()?;
    let child_defs = load(tenant, child.name(), &mut tx.conn()).await?;
    let backend = tx.conn().backend();
    let org = tenant.context().organization_id();
    let q = statement(parent, def, spec, org, &child_defs.defs, backend, None)
        .map_err(Error::Validation)?;
    tx.conn().execute(&q).await?;
    Ok(())
}

/// Checks that the roll-up compiles (its related entity, link, field and filter), with the
/// related entity's definitions; the problems, named as in the definition.
pub(crate) fn check(
    parent: EntityKind,
    def: &CustomFieldDefinition,
    spec: &RollupSpec,
    child_defs: &[CustomFieldDefinition],
    backend: crate::storage::Backend,
) -> Vec<FieldError> {
    match statement(
        parent,
        def,
        spec,
        OrganizationId::from_uuid(Uuid::nil()),
        child_defs,
        backend,
        None,
    ) {
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    }
}

/// `update <parent> as p set custom_fields = <p's with key set to the aggregate, or removed
/// when it is empty> where p.organization_id = $org [and p.id in (parents)]`.
fn statement(
    parent: EntityKind,
    def: &CustomFieldDefinition,
    spec: &RollupSpec,
    org: OrganizationId,
    child_defs: &[CustomFieldDefinition],
    backend: crate::storage::Backend,
    parents: Option<&[Uuid]>,
) -> std::result::Result<Sql, Vec<FieldError>> {
    let child = spec.child(parent).map_err(|e| vec![e])?;
    let (aggregated, ty) = spec.resolve(child, child_defs).map_err(|e| vec![e])?;
    if ty != def.field_type {
        return Err(vec![FieldError::new(
            "field_type",
            "type_mismatch",
            format!("this roll-up yields a {ty}; declare field_type `{ty}`"),
        )]);
    }
    let Some(key) = FieldKey::new(&def.key) else {
        return Err(vec![FieldError::new(
            "key",
            "invalid_format",
            "not a custom field key",
        )]);
    };
    let table = child.table();
    let mut q = Sql::new("update ");
    q.push(parent.table()).push(" as p set custom_fields = ");
    // The aggregated value of a child row (none for a count), as an SQL expression.
    let value = |q: &mut Sql| match &aggregated {
        None => {}
        Some(Aggregated::Column(name, Kind::Timestamp)) => {
            backend.push_time_text(q, table, name);
        }
        Some(Aggregated::Column(name, _)) => {
            q.push(table).push(".").push(name);
        }
        Some(Aggregated::Custom(key, t)) => match FieldKey::new(key) {
            Some(k) if matches!(t, CustomFieldType::Number | CustomFieldType::Currency) => {
                backend.push_custom_number(q, table, k, *t == CustomFieldType::Currency);
            }
            Some(k) => {
                q.push(table)
                    .push(".custom_fields->>'")
                    .push_key(k)
                    .push("'");
            }
            // Refused below.
            None => {}
        },
    };
    let mut errors = Vec::new();
    if let Some(Aggregated::Custom(key, _)) = &aggregated
        && FieldKey::new(key).is_none()
    {
        errors.push(FieldError::new(
            "computed.rollup.field",
            "unknown_field",
            "not a custom field key",
        ));
    }
    backend.push_custom_set(&mut q, "p", key, |q| {
        q.push("(select ");
        match spec.function {
            RollupFunction::Count => {
                q.push("count(*)");
            }
            // Saturates at the 64-bit range rather than fail every write of a child.
            RollupFunction::Sum => backend.push_saturating_sum(q, value),
            RollupFunction::Min | RollupFunction::Max => {
                q.push(if spec.function == RollupFunction::Min {
                    "min("
                } else {
                    "max("
                });
                value(q);
                q.push(")");
            }
        }
        q.push(" from ").push(table).push(" where ").push(table);
        q.push(".organization_id = p.organization_id and ")
            .push(table);
        q.push(".")
            .push(child_link(child, &spec.link))
            .push(" = p.id and not ");
        q.push(table).push(".is_deleted");
        if let Some(filter) = &spec.filter {
            let child_defs = super::Definitions::of(child_defs.to_vec());
            q.push(" and ");
            if let Err(Error::Validation(e)) =
                crate::record::push_condition(q, child, &child_defs, filter, backend)
            {
                errors.extend(e.into_iter().map(|f| FieldError {
                    field: format!("computed.rollup.{}", f.field),
                    ..f
                }));
            }
        }
        q.push(")");
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    q.push(" where p.organization_id = ").bind(org);
    if let Some(parents) = parents {
        q.push(" and p.id in (")
            .bind_list(parents.iter().map(|p| (*p).into()))
            .push(")");
    }
    Ok(q)
}

/// The registry's name of `child`'s link column `link` (a static identifier for the SQL text).
fn child_link(child: EntityKind, link: &str) -> &'static str {
    child
        .columns()
        .iter()
        .find(|c| c.name == link)
        .map_or("id", |c| c.name)
}
