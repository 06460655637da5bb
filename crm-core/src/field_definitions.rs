//! Typed custom fields: per organization and entity, which keys exist, of what type, required
//! or not, with which options and default.
//!
//! Every custom field value written to a record is checked against these definitions (unknown
//! keys are refused) and normalized (dates as `YYYY-MM-DD`, date-times as UTC with microseconds),
//! and list filters compare by the definition's type. Definitions are read through an
//! in-process cache (30 s; a write in this process refreshes it at once; other processes see
//! the change within the TTL).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, FieldError, Result, ResultExt as _};
use crate::events::{self, Action};
use crate::id::Id;
use crate::organizations::OrganizationId;
use crate::storage::{Conn, Sql};
use crate::tenant::Tenant;
use crate::time::now;
use crate::validation::{Validator, is_email};

/// The entities that carry custom fields, by their singular name.
pub const ENTITIES: &[&str] = &[
    "account",
    "contact",
    "lead",
    "opportunity",
    "invoice",
    "activity",
];

crate::text_enum! {
    /// The type of a custom field, which decides how values are checked and compared.
    pub enum CustomFieldType {
        /// Text up to 10,000 characters.
        Text = "text",
        /// A JSON number; filters compare numerically.
        Number = "number",
        /// `true` or `false`.
        Boolean = "boolean",
        /// A calendar date, `YYYY-MM-DD`.
        Date = "date",
        /// An RFC 3339 date-time, stored in UTC.
        Datetime = "datetime",
        /// One of the definition's options.
        Select = "select",
        /// Several distinct options; `eq` / `in` filters match records having any of them.
        MultiSelect = "multi_select",
        /// An email address.
        Email = "email",
        /// An `http(s)` URL.
        Url = "url",
        /// Money: `{"amount_minor": 12345, "currency": "EUR"}`; filters compare the amount.
        Currency = "currency",
    }
}

impl CustomFieldType {
    /// Whether `contains` / `starts_with` apply.
    pub fn is_textual(self) -> bool {
        matches!(self, Self::Text | Self::Select | Self::Email | Self::Url)
    }
}

/// The id of a custom field definition.
pub type CustomFieldId = Id<CustomFieldDefinition>;

/// A custom field of one entity in one organization.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomFieldDefinition {
    /// Its id.
    pub id: CustomFieldId,
    /// Its organization.
    pub organization_id: OrganizationId,
    /// The entity it belongs to (`"account"`…).
    pub entity: String,
    /// The key in `custom_fields` (`[a-z][a-z0-9_]*`, at most 63 characters).
    pub key: String,
    /// Human label.
    pub label: String,
    /// Type; fixed once defined.
    pub field_type: CustomFieldType,
    /// Whether every record must have a value.
    pub required: bool,
    /// Choices of `select` / `multi_select`.
    #[sqlx(json)]
    pub options: Vec<String>,
    /// Value given to new records that have none.
    #[sqlx(json(nullable))]
    pub default_value: Option<Value>,
    /// Archived fields keep their values but take no new ones.
    pub archived: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// Input of [`CustomFields::define`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewCustomField {
    /// The key.
    pub key: String,
    /// Human label.
    pub label: String,
    /// Type.
    pub field_type: CustomFieldType,
    /// Whether a value is required.
    #[serde(default)]
    pub required: bool,
    /// Choices for `select` / `multi_select` (required for them, refused for other types).
    #[serde(default)]
    pub options: Vec<String>,
    /// Default for new records.
    #[serde(default)]
    pub default_value: Option<Value>,
}

impl NewCustomField {
    /// A field of `field_type` called `key`, labelled `label`, optional, with no options.
    pub fn new(key: &str, label: &str, field_type: CustomFieldType) -> Self {
        Self {
            key: key.into(),
            label: label.into(),
            field_type,
            required: false,
            options: Vec::new(),
            default_value: None,
        }
    }
}

/// Changes to a definition (its key and type are fixed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CustomFieldPatch {
    /// New label.
    #[serde(default)]
    pub label: Option<String>,
    /// New required flag.
    #[serde(default)]
    pub required: Option<bool>,
    /// New options.
    #[serde(default)]
    pub options: Option<Vec<String>>,
    /// New default (`Some(None)` removes it).
    #[serde(default, deserialize_with = "crate::record::present")]
    pub default_value: Option<Option<Value>>,
    /// Archive or unarchive.
    #[serde(default)]
    pub archived: Option<bool>,
}

/// The definitions of one entity in one organization.
#[derive(Debug, Clone, Default)]
pub(crate) struct Definitions {
    defs: Vec<CustomFieldDefinition>,
}

/// The process-wide cache of definitions.
pub(crate) type DefinitionCache =
    moka::sync::Cache<(OrganizationId, &'static str), Arc<Definitions>>;

pub(crate) fn new_cache() -> DefinitionCache {
    moka::sync::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(Duration::from_secs(30))
        .build()
}

/// The static name of `entity`, if it carries custom fields.
fn entity_name(entity: &str) -> Result<&'static str> {
    ENTITIES
        .iter()
        .copied()
        .find(|e| *e == entity)
        .ok_or_else(|| {
            Error::invalid(
                "entity",
                "invalid_choice",
                format!(
                    "unknown entity `{entity}`; expected one of: {}",
                    ENTITIES.join(", ")
                ),
            )
        })
}

/// The definitions of `entity` for the tenant, from the cache or read on `conn`.
pub(crate) async fn load(
    tenant: &Tenant,
    entity: &'static str,
    conn: &mut Conn<'_>,
) -> Result<Arc<Definitions>> {
    let key = (tenant.context().organization_id(), entity);
    if let Some(d) = tenant.crm().definition_cache().get(&key) {
        return Ok(d);
    }
    let mut q = Sql::new("select * from custom_field_definitions where organization_id = ");
    q.bind(key.0)
        .push(" and entity = ")
        .bind(entity)
        .push(" order by key");
    let defs = Arc::new(Definitions {
        defs: conn.fetch_all(&q).await?,
    });
    tenant.crm().definition_cache().insert(key, defs.clone());
    Ok(defs)
}

impl Definitions {
    pub(crate) fn get(&self, key: &str) -> Option<&CustomFieldDefinition> {
        self.defs.iter().find(|d| d.key == key)
    }

    /// Checks and normalizes the custom fields of a record about to be written. `before` is the
    /// stored map (`None` on create, when defaults apply and every required field must be set).
    pub(crate) fn check(
        &self,
        before: Option<&Map<String, Value>>,
        mut after: Map<String, Value>,
    ) -> Result<Map<String, Value>> {
        let mut errors = Vec::new();
        if before.is_none() {
            for d in self.defs.iter().filter(|d| !d.archived) {
                if let (false, Some(v)) = (after.contains_key(&d.key), &d.default_value) {
                    after.insert(d.key.clone(), v.clone());
                }
            }
        }
        for (key, value) in after.iter_mut() {
            let field = format!("custom_fields.{key}");
            let unchanged = before.and_then(|b| b.get(key)) == Some(&*value);
            match self.get(key) {
                None if unchanged => {}
                None => errors.push(FieldError::new(
                    field,
                    "unknown_field",
                    format!("`{key}` is not a custom field of this entity"),
                )),
                Some(d) if d.archived && !unchanged => errors.push(FieldError::new(
                    field,
                    "archived",
                    format!("`{key}` is archived and takes no new values"),
                )),
                Some(d) => match normalize(d, value) {
                    Ok(v) => *value = v,
                    Err(message) => errors.push(FieldError::new(field, "invalid_value", message)),
                },
            }
        }
        for d in self.defs.iter().filter(|d| d.required && !d.archived) {
            if !after.contains_key(&d.key) {
                errors.push(FieldError::new(
                    format!("custom_fields.{}", d.key),
                    "required",
                    "is required",
                ));
            }
        }
        if errors.is_empty() {
            Ok(after)
        } else {
            Err(Error::Validation(errors))
        }
    }
}

/// Checks `value` against a definition and returns its stored form.
pub(crate) fn normalize(
    d: &CustomFieldDefinition,
    value: &Value,
) -> std::result::Result<Value, String> {
    let s = value.as_str();
    let bad = |what: &str| Err(format!("must be {what}"));
    match d.field_type {
        CustomFieldType::Text => match s {
            Some(t) if t.chars().count() <= 10_000 => Ok(value.clone()),
            _ => bad("text of at most 10000 characters"),
        },
        CustomFieldType::Number => match value {
            Value::Number(_) => Ok(value.clone()),
            _ => bad("a number"),
        },
        CustomFieldType::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => bad("true or false"),
        },
        CustomFieldType::Date => {
            match s.and_then(|t| NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()) {
                Some(date) => Ok(Value::String(date.format("%Y-%m-%d").to_string())),
                None => bad("a date (YYYY-MM-DD)"),
            }
        }
        CustomFieldType::Datetime => match s.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) {
            Some(t) => Ok(Value::String(
                t.with_timezone(&Utc)
                    .to_rfc3339_opts(SecondsFormat::Micros, true),
            )),
            None => bad("an RFC 3339 date-time"),
        },
        CustomFieldType::Select => match s {
            Some(t) if d.options.iter().any(|o| o == t) => Ok(value.clone()),
            _ => Err(format!("must be one of: {}", d.options.join(", "))),
        },
        CustomFieldType::MultiSelect => {
            let items = value
                .as_array()
                .map(|a| a.iter().map(Value::as_str).collect::<Option<Vec<_>>>());
            match items {
                Some(Some(items))
                    if items.iter().all(|i| d.options.iter().any(|o| o == i))
                        && items
                            .iter()
                            .enumerate()
                            .all(|(n, i)| !items[..n].contains(i)) =>
                {
                    Ok(value.clone())
                }
                _ => Err(format!(
                    "must be a list of distinct options among: {}",
                    d.options.join(", ")
                )),
            }
        }
        CustomFieldType::Email => match s {
            Some(t) if is_email(t) => Ok(value.clone()),
            _ => bad("an email address"),
        },
        CustomFieldType::Url => match s {
            Some(t)
                if (t.starts_with("https://") || t.starts_with("http://"))
                    && t.len() <= 2048
                    && !t.chars().any(char::is_whitespace) =>
            {
                Ok(value.clone())
            }
            _ => bad("an http(s) URL"),
        },
        CustomFieldType::Currency => {
            let amount = value.get("amount_minor").and_then(Value::as_i64);
            let currency = value.get("currency").and_then(Value::as_str);
            match (value.as_object().map(Map::len), amount, currency) {
                (Some(2), Some(_), Some(c))
                    if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) =>
                {
                    Ok(value.clone())
                }
                _ => bad(r#"money: {"amount_minor": <integer>, "currency": "<ISO 4217>"}"#),
            }
        }
    }
}

/// Manages the custom field definitions of one organization. Reached through
/// [`Tenant::custom_fields`]; changing definitions is for company admins.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use crm_core::{Crm, CustomFieldType, NewAccount, NewCustomField, NewOrganization, TenantContext};
/// # let crm = Crm::connect("sqlite::memory:").await?;
/// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
/// let t = crm.tenant(&TenantContext::system(org.id));
/// let mut tier = NewCustomField::new("tier", "Tier", CustomFieldType::Select);
/// tier.options = vec!["gold".into(), "silver".into()];
/// t.custom_fields().define("account", tier).await?;
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
        if self.tenant.context().role().is_admin() {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "only company admins may change custom field definitions".into(),
            ))
        }
    }

    /// The definitions of `entity`, archived ones included, by key.
    pub async fn list(&self, entity: &str) -> Result<Vec<CustomFieldDefinition>> {
        let entity = entity_name(entity)?;
        let mut s = self.tenant.session().await?;
        Ok(load(self.tenant, entity, &mut s.conn()).await?.defs.clone())
    }

    /// The definition of `key` on `entity`.
    pub async fn get(&self, entity: &str, key: &str) -> Result<CustomFieldDefinition> {
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
    pub async fn define(&self, entity: &str, new: NewCustomField) -> Result<CustomFieldDefinition> {
        self.require_admin()?;
        let entity = entity_name(entity)?;
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
            created_at: at,
            updated_at: at,
            version: 1,
        };
        let def = check_definition(def)?;
        let mut q = Sql::new(
            "insert into custom_field_definitions (organization_id, id, entity, key, label, field_type, required, options, default_value, archived, created_at, updated_at, version) values (",
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
            .bind(at)
            .push(", ")
            .bind(at)
            .push(", 1)");
        let conflict = format!("custom field `{}` already exists on {entity}", def.key);
        self.write(entity, Action::Created, &def, &q, conflict, 1)
            .await?;
        Ok(def)
    }

    /// Changes the label, required flag, options, default or archived flag of `key`.
    pub async fn update(
        &self,
        entity: &str,
        key: &str,
        patch: CustomFieldPatch,
    ) -> Result<CustomFieldDefinition> {
        self.require_admin()?;
        let current = self.get(entity, key).await?;
        let entity = entity_name(entity)?;
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
        def.updated_at = now();
        def.version += 1;
        let def = check_definition(def)?;
        let mut q = Sql::new("update custom_field_definitions set label = ");
        q.bind(def.label.as_str())
            .push(", required = ")
            .bind(def.required);
        q.push(", options = ")
            .bind(Value::from(def.options.clone()));
        q.push(", default_value = ").bind(def.default_value.clone());
        q.push(", archived = ")
            .bind(def.archived)
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
        )
        .await?;
        Ok(def)
    }

    /// Archives `key`: existing values stay, new values are refused. (Definitions are never
    /// deleted, so no stored value loses its meaning.)
    pub async fn archive(&self, entity: &str, key: &str) -> Result<CustomFieldDefinition> {
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

    /// Runs `statement` (which must touch one row; none means someone else wrote at
    /// `version` first) and logs an event in one transaction, then refreshes the cache.
    async fn write(
        &self,
        entity: &'static str,
        action: Action,
        def: &CustomFieldDefinition,
        statement: &Sql,
        conflict: String,
        version: i64,
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
            events::append(
                &mut tx.conn(),
                self.tenant.context(),
                "custom_field",
                def.id.uuid(),
                action,
                changes,
            )
            .await
        }
        .await;
        tx.settle(out).await?;
        self.tenant
            .crm()
            .definition_cache()
            .invalidate(&(self.tenant.context().organization_id(), entity));
        Ok(())
    }
}

/// Checks a definition as a whole.
fn check_definition(def: CustomFieldDefinition) -> Result<CustomFieldDefinition> {
    let mut v = Validator::new();
    v.check(
        crate::record::is_custom_field_key(&def.key),
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
    if let Some(default) = &def.default_value
        && let Err(message) = normalize(&def, default)
    {
        v.push("default_value", "invalid_value", message);
    }
    v.finish()?;
    Ok(def)
}
