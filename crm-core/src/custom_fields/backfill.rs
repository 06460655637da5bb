//! Backfilling a computed field on the records that exist when it is defined or changed, in
//! the transaction of the definition's write.
//!
//! A roll-up is one set-based statement over every record of the organization; formulas are
//! evaluated in Rust, over the records in keyset batches of [`BATCH`] ids (trashed ones too),
//! writing only the records whose value changes. Neither bumps versions nor logs per-record
//! events: the values are derived, and the definition's own event says what changed.

use std::future::Future;
use std::pin::Pin;

use uuid::Uuid;

use super::computation::Computed;
use super::definition::CustomFieldDefinition;
use super::typed::Definitions;
use crate::entities::{EntityKind, EntityVisitor};
use crate::error::Result;
use crate::organizations::OrganizationId;
use crate::record::{Entity, Record};
use crate::storage::{Sql, Tx};
use crate::tenant::Tenant;

/// Records read per formula backfill batch.
const BATCH: i64 = 500;

/// Sets `def` (computed, of `entity`) on the organization's records; `all` are the entity's
/// definitions with `def` as it now is.
pub(super) async fn backfill(
    tx: &mut Tx<'_>,
    tenant: &Tenant,
    entity: EntityKind,
    def: &CustomFieldDefinition,
    all: Vec<CustomFieldDefinition>,
) -> Result<()> {
    match &def.computed {
        Some(Computed::Rollup(spec)) => {
            super::rollup::backfill(tx, tenant, entity, def, spec).await
        }
        Some(Computed::Formula(_)) => {
            let defs = Definitions::of(all);
            let org = tenant.context().organization_id();
            entity
                .visit(Formulas {
                    tx,
                    org,
                    defs: &defs,
                })
                .await
        }
        None => Ok(()),
    }
}

/// Re-evaluates the formulas of the visited kind on every record of the organization.
struct Formulas<'a, 'c> {
    tx: &'a mut Tx<'c>,
    org: OrganizationId,
    defs: &'a Definitions,
}

impl<'a, 'c> EntityVisitor for Formulas<'a, 'c> {
    type Output = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

    fn visit<E: Entity>(self) -> Self::Output {
        let Formulas { tx, org, defs } = self;
        Box::pin(async move {
            let mut after: Option<Uuid> = None;
            loop {
                let mut q = Sql::new("select ");
                q.push(E::SELECT)
                    .push(" from ")
                    .push(E::TABLE)
                    .push(" where organization_id = ")
                    .bind(org);
                if let Some(after) = after {
                    q.push(" and id > ").bind(after);
                }
                q.push(" order by id limit ").bind(BATCH);
                let rows: Vec<Record<E>> = tx.conn().fetch_all(&q).await?;
                let Some(last) = rows.last() else {
                    return Ok(());
                };
                after = Some(last.id.uuid());
                for r in rows {
                    let mut custom = r.custom_fields.clone();
                    defs.apply_formulas(&r.fields, &mut custom)?;
                    if custom != r.custom_fields {
                        let mut u = Sql::new("update ");
                        u.push(E::TABLE)
                            .push(" set custom_fields = ")
                            .bind(serde_json::Value::Object(custom));
                        u.push(" where organization_id = ")
                            .bind(org)
                            .push(" and id = ")
                            .bind(r.id);
                        tx.conn().execute(&u).await?;
                    }
                }
            }
        })
    }
}
