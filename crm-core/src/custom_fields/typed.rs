//! What a definition brings to a value: type checks and the stored form, for the definitions
//! of one entity in one organization; and the process-wide cache of those definitions.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};

use crate::time::YEARS;
use serde_json::{Map, Value};

use super::definition::{CustomFieldDefinition, CustomFieldType, MAX_TEXT_CHARS};
use super::formula::Formula;
use crate::error::{Error, FieldError, Result};
use crate::organizations::OrganizationId;
use crate::storage::{Conn, Sql};
use crate::tenant::Tenant;
use crate::validation::is_email;

/// The definitions of one entity in one organization.
#[derive(Debug, Clone, Default)]
pub(crate) struct Definitions {
    pub(super) defs: Vec<CustomFieldDefinition>,
    /// The live formulas, parsed once per load: `(key, formula)`.
    pub(super) formulas: Vec<(String, Formula)>,
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
    let defs = Arc::new(Definitions::of(conn.fetch_all(&q).await?));
    tenant.crm().definition_cache().insert(key, defs.clone());
    Ok(defs)
}

impl Definitions {
    /// The keys of the live formulas whose value would reveal a field of `hidden` (column
    /// names and custom field keys): those that read one (formulas read stored fields only).
    pub(crate) fn formulas_reading(&self, hidden: &[&str]) -> Vec<String> {
        self.formulas
            .iter()
            .filter(|(_, f)| f.reads().iter().any(|r| hidden.contains(r)))
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// The definitions whose values are unique.
    pub(crate) fn unique(&self) -> impl Iterator<Item = &CustomFieldDefinition> {
        self.defs.iter().filter(|d| d.unique)
    }

    /// `defs` (of one entity), with their live formulas parsed.
    pub(crate) fn of(defs: Vec<CustomFieldDefinition>) -> Self {
        let formulas = super::formula::parse_all(&defs);
        Self { defs, formulas }
    }

    /// Sets the formula fields of a record about to be written in `custom` (a key removed when
    /// its value is empty), from its fields (`record`) and its stored custom fields.
    pub(crate) fn apply_formulas<T: serde::Serialize>(
        &self,
        record: &T,
        custom: &mut Map<String, Value>,
    ) -> Result<()> {
        if self.formulas.is_empty() {
            return Ok(());
        }
        let fields = match serde_json::to_value(record) {
            Ok(Value::Object(m)) => m,
            _ => return Err(Error::Internal("a record is not a JSON object".into())),
        };
        let values: Vec<_> = self
            .formulas
            .iter()
            .map(|(key, f)| (key, f.eval(&fields, custom)))
            .collect();
        for (key, value) in values {
            match value {
                Some(v) => custom.insert(key.clone(), v),
                None => custom.remove(key),
            };
        }
        Ok(())
    }

    /// [`Definitions::apply_formulas`] for a new record, whose count and sum roll-ups start at
    /// 0 (nothing links to it yet; min and max stay empty).
    pub(crate) fn apply_computed_new<T: serde::Serialize>(
        &self,
        record: &T,
        custom: &mut Map<String, Value>,
    ) -> Result<()> {
        use super::computation::{Computed, RollupFunction};
        for d in self.defs.iter().filter(|d| !d.archived) {
            if let Some(Computed::Rollup(r)) = &d.computed
                && matches!(r.function, RollupFunction::Count | RollupFunction::Sum)
            {
                custom.insert(d.key.clone(), Value::from(0));
            }
        }
        self.apply_formulas(record, custom)
    }

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
                Some(d) if d.computed.is_some() && !unchanged => errors.push(FieldError::new(
                    field,
                    "computed_field",
                    format!("`{key}` is computed and cannot be written"),
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
        for (key, _) in before.into_iter().flatten() {
            if !after.contains_key(key) && self.get(key).is_some_and(|d| d.computed.is_some()) {
                errors.push(FieldError::new(
                    format!("custom_fields.{key}"),
                    "computed_field",
                    format!("`{key}` is computed and cannot be written"),
                ));
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
            Some(t) if t.chars().count() <= MAX_TEXT_CHARS => Ok(value.clone()),
            _ => bad(&format!("text of at most {MAX_TEXT_CHARS} characters")),
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
            let date = s.and_then(|t| NaiveDate::parse_from_str(t, "%Y-%m-%d").ok());
            match date.filter(|d| YEARS.contains(&d.year())) {
                Some(date) => Ok(Value::String(date.format("%Y-%m-%d").to_string())),
                None => bad("a date (YYYY-MM-DD)"),
            }
        }
        CustomFieldType::Datetime => match s
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .filter(|t| YEARS.contains(&t.with_timezone(&Utc).year()))
        {
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
