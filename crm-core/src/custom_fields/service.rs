//! [`CustomFields`]: the service that reads, defines, changes and archives definitions.

use serde_json::{Map, Value};

use super::computation::Computed;
use super::definition::{
    CustomFieldDefinition, CustomFieldId, CustomFieldPatch, CustomFieldType, NewCustomField,
};
use super::typed::{load, normalize};
use crate::entities::EntityKind;
use crate::error::{Error, Result, ResultExt as _};
use crate::events::{self, Action};
use crate::storage::Sql;
use crate::tenant::Tenant;
use crate::time::now;
use crate::validation::Validator;
impl Tenant {
    /// Custom field definitions.
    pub fn custom_fields(&self) -> CustomFields<'_> {
        CustomFields::new(self)
    }
}

/// Manages the custom field definitions of one organization. Reached through
/// [`Tenant::custom_fields`]; changing definitions is for company admins.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use crm_core::{Crm, CustomFieldType, EntityKind, NewAccount, NewCustomField, NewOrganization, TenantContext};
/// # let crm = Crm::connect("sqlite::memory:").await?;
/// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
/// let t = crm.tenant(&TenantContext::system(org.id));
/// let mut tier = NewCustomField::new("tier", "Tier", CustomFieldType::Select);
/// tier.options = vec!["gold".into(), "silver".into()];
/// t.custom_fields().define(EntityKind::Account, tier).await?;
///
/// let mut new = NewAccount { name: "Globex".into(), ..Default::default() };
/// new.custom_fields.insert("tier".into(), "bronze".into());
/// assert!(t.accounts().create(new).await.is_err()); // not an option
/// # Ok::<_, crm_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CustomFields<'t> {
    tenant: &'t Tenant,
}

impl<'t> CustomFields<'t> {
    pub(crate) fn new(tenant: &'t Tenant) -> Self {
        Self { tenant }
    }

    fn require_admin(&self) -> Result<()> {
        crate::access::roles::require_admin(
            self.tenant.context(),
            "change custom field definitions",
        )
    }

    /// The definitions of `entity`, archived ones included, by key.
    pub async fn list(&self, entity: EntityKind) -> Result<Vec<CustomFieldDefinition>> {
        self.tenant.require_settings().await?;
        let entity = entity.name();
        let mut s = self.tenant.session().await?;
        Ok(load(self.tenant, entity, &mut s.conn()).await?.defs.clone())
    }

    /// The definition of `key` on `entity`.
    pub async fn get(&self, entity: EntityKind, key: &str) -> Result<CustomFieldDefinition> {
        self.list(entity)
            .await?
            .into_iter()
            .find(|d| d.key == key)
            .ok_or(Error::NotFound {
                entity: "custom field",
                id: None,
            })
    }

    /// Defines a new custom field on `entity`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for plain users, [`Error::Validation`] for a bad key, label,
    /// options or default, [`Error::Conflict`] when the key exists (archived or not).
    pub async fn define(
        &self,
        entity: EntityKind,
        new: NewCustomField,
    ) -> Result<CustomFieldDefinition> {
        self.require_admin()?;
        let kind = entity;
        let entity = entity.name();
        let at = now();
        let def = CustomFieldDefinition {
            id: CustomFieldId::new(),
            organization_id: self.tenant.context().organization_id(),
            entity: entity.into(),
            key: new.key.clone(),
            label: new.label.trim().into(),
            field_type: new.field_type,
            required: new.required,
            options: new.options,
            default_value: new.default_value,
            archived: false,
            unique: new.unique,
            computed: new.computed,
            created_at: at,
            updated_at: at,
            version: 1,
        };
        let def = check_definition(def)?;
        let all = self.check_computed(kind, &def).await?;
        let mut q = Sql::new(
            "insert into custom_field_definitions (organization_id, id, entity, key, label, field_type, required, options, default_value, archived, is_unique, created_at, updated_at, version, computed) values (",
        );
        q.bind(def.organization_id)
            .push(", ")
            .bind(def.id)
            .push(", ")
            .bind(entity);
        q.push(", ")
            .bind(def.key.as_str())
            .push(", ")
            .bind(def.label.as_str());
        q.push(", ")
            .bind(def.field_type.as_str())
            .push(", ")
            .bind(def.required);
        q.push(", ")
            .bind(Value::from(def.options.clone()))
            .push(", ")
            .bind(def.default_value.clone());
        q.push(", false, ")
            .bind(def.unique)
            .push(", ")
            .bind(at)
            .push(", ")
            .bind(at)
            .push(", 1, ")
            .bind(computed_json(&def))
            .push(")");
        let conflict = format!("custom field `{}` already exists on {entity}", def.key);
        let unique = def.unique.then_some(true);
        let backfill = all.map(|all| (kind, all));
        self.write(
            entity,
            Action::Created,
            &def,
            &q,
            conflict,
            1,
            unique,
            backfill,
        )
        .await?;
        Ok(def)
    }

    /// Changes the label, required flag, options, default or archived flag of `key`.
    pub async fn update(
        &self,
        entity: EntityKind,
        key: &str,
        patch: CustomFieldPatch,
    ) -> Result<CustomFieldDefinition> {
        self.require_admin()?;
        let current = self.get(entity, key).await?;
        let kind = entity;
        let entity = entity.name();
        let mut def = current.clone();
        if let Some(label) = patch.label {
            def.label = label.trim().into();
        }
        if let Some(required) = patch.required {
            def.required = required;
        }
        if let Some(options) = patch.options {
            def.options = options;
        }
        if let Some(default) = patch.default_value {
            def.default_value = default;
        }
        if let Some(archived) = patch.archived {
            def.archived = archived;
        }
        if let Some(unique) = patch.unique {
            def.unique = unique;
        }
        if let Some(computed) = patch.computed {
            if current.computed.is_none() {
                return Err(Error::invalid(
                    "computed",
                    "not_allowed",
                    "a stored field cannot become computed; define a new field",
                ));
            }
            def.computed = Some(computed);
        }
        def.updated_at = now();
        def.version += 1;
        let def = check_definition(def)?;
        // Recomputed when the computation changes or the field comes back from the archive.
        let recompute = !def.archived && (def.computed != current.computed || current.archived);
        let all = self.check_computed(kind, &def).await?;
        let backfill = all.filter(|_| recompute).map(|all| (kind, all));
        let mut q = Sql::new("update custom_field_definitions set label = ");
        q.bind(def.label.as_str())
            .push(", required = ")
            .bind(def.required);
        q.push(", options = ")
            .bind(Value::from(def.options.clone()));
        q.push(", default_value = ").bind(def.default_value.clone());
        q.push(", computed = ").bind(computed_json(&def));
        q.push(", archived = ")
            .bind(def.archived)
            .push(", is_unique = ")
            .bind(def.unique)
            .push(", updated_at = ")
            .bind(def.updated_at);
        q.push(", version = version + 1 where organization_id = ")
            .bind(def.organization_id);
        q.push(" and id = ")
            .bind(def.id)
            .push(" and version = ")
            .bind(current.version);
        self.write(
            entity,
            Action::Updated,
            &def,
            &q,
            String::new(),
            current.version,
            (def.unique != current.unique).then_some(def.unique),
            backfill,
        )
        .await?;
        Ok(def)
    }

    /// Archives `key`: existing values stay, new values are refused. (Definitions are never
    /// deleted, so no stored value loses its meaning.)
    pub async fn archive(&self, entity: EntityKind, key: &str) -> Result<CustomFieldDefinition> {
        self.update(
            entity,
            key,
            CustomFieldPatch {
                archived: Some(true),
                ..Default::default()
            },
        )
        .await
    }

    /// The checks of a computed definition (none for a stored one) that need the entity's
    /// other definitions and, for a roll-up, the related entity's: the entity's definitions with
    /// `def` as it will be, for its backfill.
    async fn check_computed(
        &self,
        kind: EntityKind,
        def: &CustomFieldDefinition,
    ) -> Result<Option<Vec<CustomFieldDefinition>>> {
        let Some(computed) = &def.computed else {
            return Ok(None);
        };
        let mut s = self.tenant.session().await?;
        let mut conn = s.conn();
        let siblings = load(self.tenant, kind.name(), &mut conn)
            .await?
            .defs
            .clone();
        let mut errors = super::computed::check(def, kind, &siblings);
        if let Computed::Rollup(spec) = computed {
            match spec.child(kind) {
                Err(e) => errors.push(e),
                Ok(child) => {
                    let child_defs = load(self.tenant, child.name(), &mut conn).await?;
                    let backend = conn.backend();
                    errors.extend(super::rollup::check(
                        kind,
                        def,
                        spec,
                        &child_defs.defs,
                        backend,
                    ));
                }
            }
        }
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        let mut all: Vec<_> = siblings.into_iter().filter(|d| d.key != def.key).collect();
        all.push(def.clone());
        Ok(Some(all))
    }

    /// Runs `statement` (which must touch one row; none means someone else wrote at
    /// `version` first), logs an event and backfills a computed field (`backfill`: its entity
    /// and definitions) in one transaction, then refreshes the cache. With `unique` set, the
    /// field's unique values are recorded from the existing records (`true`: a collision
    /// refuses the change) or dropped (`false`), in the same transaction.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        entity: &'static str,
        action: Action,
        def: &CustomFieldDefinition,
        statement: &Sql,
        conflict: String,
        version: i64,
        unique: Option<bool>,
        backfill: Option<(EntityKind, Vec<CustomFieldDefinition>)>,
    ) -> Result<()> {
        let mut changes = Map::new();
        changes.insert(
            "definition".into(),
            serde_json::to_value(def).unwrap_or_default(),
        );
        let mut s = self.tenant.session().await?;
        let mut tx = s.begin().await?;
        let out = async {
            match tx.conn().execute(statement).await.on_unique(|| conflict)? {
                1 => {}
                _ => {
                    return Err(Error::VersionMismatch {
                        expected: version,
                        actual: version + 1,
                    });
                }
            }
            match unique {
                Some(true) => {
                    crate::record::backfill_unique(&mut tx.conn(), def).await?;
                }
                Some(false) => {
                    crate::record::drop_unique(&mut tx.conn(), def).await?;
                }
                None => {}
            }
            events::append(
                &mut tx.conn(),
                self.tenant.context(),
                events::CUSTOM_FIELD,
                def.id.uuid(),
                action,
                changes,
            )
            .await?;
            if let Some((kind, all)) = backfill {
                super::backfill::backfill(&mut tx, self.tenant, kind, def, all).await?;
            }
            Ok(())
        }
        .await;
        tx.settle(out).await?;
        self.tenant
            .crm()
            .definition_cache()
            .invalidate(&(self.tenant.context().organization_id(), entity));
        // A formula may now read a field hidden from someone, or no longer: their grants say.
        self.tenant.forget_grants();
        Ok(())
    }
}

/// The stored form of a definition's `computed` part.
fn computed_json(def: &CustomFieldDefinition) -> Option<Value> {
    def.computed
        .as_ref()
        .and_then(|c| serde_json::to_value(c).ok())
}

/// Checks a definition as a whole.
fn check_definition(def: CustomFieldDefinition) -> Result<CustomFieldDefinition> {
    let mut v = Validator::new();
    v.check(
        super::CustomValues::is_valid_key(&def.key),
        "key",
        "invalid_format",
        "must be 1-63 characters of a-z, 0-9 and '_', starting with a letter",
    );
    v.text("label", &def.label, true, 200);
    let choice = matches!(
        def.field_type,
        CustomFieldType::Select | CustomFieldType::MultiSelect
    );
    if choice {
        let distinct = def
            .options
            .iter()
            .enumerate()
            .all(|(i, o)| !def.options[..i].contains(o));
        v.check(
            !def.options.is_empty()
                && def.options.len() <= 500
                && distinct
                && def
                    .options
                    .iter()
                    .all(|o| !o.trim().is_empty() && o.len() <= 200),
            "options",
            "invalid_options",
            "select fields need 1-500 distinct, non-blank options",
        );
    } else {
        v.check(
            def.options.is_empty(),
            "options",
            "not_allowed",
            "only select and multi_select fields have options",
        );
    }
    v.check(
        !def.unique || crate::record::may_be_unique(def.field_type),
        "unique",
        "not_allowed",
        "boolean, multi_select and currency fields cannot be unique",
    );
    // Unique values are recorded when a record is written; roll-ups change without a write of
    // their record, so the side table would fall behind.
    v.check(
        !(def.unique && def.computed.is_some()),
        "unique",
        "not_allowed",
        "computed fields cannot be unique",
    );
    if let Some(default) = &def.default_value
        && let Err(message) = normalize(&def, default)
    {
        v.push("default_value", "invalid_value", message);
    }
    v.finish()?;
    Ok(def)
}
